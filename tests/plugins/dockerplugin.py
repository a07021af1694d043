#!/usr/bin/env python3
"""A Docker plugin in Python's standard library only, as third parties
write them: HTTP on a UNIX socket speaking Docker's plugin protocol.

  dockerplugin.py volume SOCKET ROOT   VolumeDriver: volumes are
      directories under ROOT/volumes, mounts counted per container.
  dockerplugin.py ipam SOCKET ROOT  IpamDriver: pools from 10.55.N.0/24
      (or the subnet asked), the gateway on request, then addresses in
      order; what is given back is handed out again.
  dockerplugin.py network SOCKET ROOT  NetworkDriver, as Docker's remote
      drivers work: a Linux bridge per network (with the gateway address),
      and per join a veth pair whose container end is handed to the engine
      by name (InterfaceName) to move into the sandbox; one static route.
      Run it in the engine's network namespace (it calls `ip`).

Every call is appended to ROOT/calls.log, so a test can see what the
engine asked.
"""
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import sys
import threading

KIND, SOCKET, ROOT = sys.argv[1], sys.argv[2], sys.argv[3]
VOLUMES = os.path.join(ROOT, "volumes")
os.makedirs(VOLUMES, exist_ok=True)
LOCK = threading.Lock()
USERS = {}  # volume name -> set of container IDs that mounted it
NETWORKS = {}  # network ID -> {"bridge", "gateway" (ADDR/PREFIX)}
ENDPOINTS = {}  # endpoint ID -> network ID
# A route every container on a network of this plugin gets (StaticRoutes).
EXTRA_ROUTE = "10.88.0.0/16"


def path_of(name):
    return os.path.join(VOLUMES, name)


def volume(method, req):
    name = req.get("Name", "")
    if method == "/Plugin.Activate":
        return {"Implements": ["VolumeDriver"]}
    if method == "/VolumeDriver.Capabilities":
        return {"Capabilities": {"Scope": "local"}}
    if method == "/VolumeDriver.List":
        return {"Volumes": [{"Name": n} for n in sorted(os.listdir(VOLUMES))]}
    if method == "/VolumeDriver.Create":
        if not name or "/" in name or name.startswith("."):
            return {"Err": "bad volume name %r" % name}
        os.makedirs(path_of(name), exist_ok=True)
        return {}
    if not os.path.isdir(path_of(name)):
        return {"Err": "no such volume: %s" % name}
    if method == "/VolumeDriver.Get":
        return {"Volume": {"Name": name, "Mountpoint": path_of(name), "Status": {}}}
    if method == "/VolumeDriver.Path":
        return {"Mountpoint": path_of(name)}
    if method == "/VolumeDriver.Mount":
        USERS.setdefault(name, set()).add(req.get("ID", ""))
        return {"Mountpoint": path_of(name)}
    if method == "/VolumeDriver.Unmount":
        USERS.get(name, set()).discard(req.get("ID", ""))
        return {}
    if method == "/VolumeDriver.Remove":
        if USERS.get(name):
            return {"Err": "volume %s is in use" % name}
        shutil.rmtree(path_of(name))
        return {}
    return {"Err": "unknown method %s" % method}


def ip(*args):
    done = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), done.stderr.strip()))


def network(method, req):
    nid, eid = req.get("NetworkID", ""), req.get("EndpointID", "")
    if method == "/Plugin.Activate":
        return {"Implements": ["NetworkDriver"]}
    if method == "/NetworkDriver.GetCapabilities":
        return {"Scope": "local", "ConnectivityScope": "local"}
    if method == "/NetworkDriver.CreateNetwork":
        data = req.get("IPv4Data") or [{}]
        gateway = data[0].get("Gateway", "")
        if not gateway:
            return {"Err": "pynet needs an IPv4 gateway"}
        bridge = "pyn" + nid[:10]
        ip("link", "add", bridge, "type", "bridge")
        ip("addr", "add", gateway, "dev", bridge)
        ip("link", "set", bridge, "up")
        NETWORKS[nid] = {"bridge": bridge, "gateway": gateway}
        return {}
    if nid not in NETWORKS:
        return {"Err": "no such network: %s" % nid}
    net = NETWORKS[nid]
    if method == "/NetworkDriver.DeleteNetwork":
        ip("link", "del", net["bridge"])
        del NETWORKS[nid]
        return {}
    if method == "/NetworkDriver.CreateEndpoint":
        ENDPOINTS[eid] = nid
        return {"Interface": {}}
    if eid not in ENDPOINTS:
        return {"Err": "no such endpoint: %s" % eid}
    host, peer = "pyh" + eid[:10], "pyc" + eid[:10]
    if method == "/NetworkDriver.Join":
        ip("link", "add", host, "type", "veth", "peer", "name", peer)
        ip("link", "set", host, "master", net["bridge"], "up")
        gateway = net["gateway"].split("/")[0]
        return {
            "InterfaceName": {"SrcName": peer, "DstPrefix": "eth"},
            "Gateway": gateway,
            "StaticRoutes": [{"Destination": EXTRA_ROUTE, "RouteType": 0, "NextHop": gateway}],
        }
    if method == "/NetworkDriver.Leave":
        # The engine gives the container's end back, under its own name,
        # before it asks to leave (as Docker's does).
        returned = subprocess.run(["ip", "link", "show", peer], capture_output=True).returncode == 0
        with open(os.path.join(ROOT, "calls.log"), "a") as log:
            log.write("returned %s %s\n" % (peer, "yes" if returned else "no"))
        try:
            ip("link", "del", host)
        except RuntimeError:
            pass  # gone with its namespace already
        return {}
    if method == "/NetworkDriver.DeleteEndpoint":
        del ENDPOINTS[eid]
        return {}
    if method == "/NetworkDriver.EndpointOperInfo":
        return {"Value": {}}
    return {"Err": "unknown method %s" % method}


POOLS = {}  # pool ID -> {"subnet": "A.B.C.0/24", "taken": set of last octets}


def ipam(method, req):
    pool_id = req.get("PoolID", "")
    if method == "/Plugin.Activate":
        return {"Implements": ["IpamDriver"]}
    if method == "/IpamDriver.GetCapabilities":
        return {"RequiresMACAddress": False}
    if method == "/IpamDriver.GetDefaultAddressSpaces":
        return {"LocalDefaultAddressSpace": "pylocal", "GlobalDefaultAddressSpace": "pyglobal"}
    if method == "/IpamDriver.RequestPool":
        if req.get("V6"):
            return {"Err": "pyipam has IPv4 pools only"}
        subnet = req.get("Pool") or "10.55.%d.0/24" % len(POOLS)
        if not subnet.endswith(".0/24"):
            return {"Err": "pyipam hands out /24 pools only, not %s" % subnet}
        pool_id = "pool-%d" % len(POOLS)
        POOLS[pool_id] = {"subnet": subnet, "taken": set()}
        return {"PoolID": pool_id, "Pool": subnet, "Data": {}}
    if pool_id not in POOLS:
        return {"Err": "no such pool: %s" % pool_id}
    pool = POOLS[pool_id]
    prefix = pool["subnet"].rsplit(".", 1)[0]
    if method == "/IpamDriver.ReleasePool":
        del POOLS[pool_id]
        return {}
    if method == "/IpamDriver.RequestAddress":
        asked = req.get("Address", "")
        gateway = (req.get("Options") or {}).get("RequestAddressType") == "com.docker.network.gateway"
        if asked:
            last = int(asked.rsplit(".", 1)[1])
        elif gateway:
            last = 1
        else:
            last = next(n for n in range(2, 255) if n not in pool["taken"])
        if last in pool["taken"]:
            return {"Err": "%s.%d is taken" % (prefix, last)}
        pool["taken"].add(last)
        return {"Address": "%s.%d/24" % (prefix, last), "Data": {}}
    if method == "/IpamDriver.ReleaseAddress":
        pool["taken"].discard(int(req.get("Address", "0.0.0.0").split("/")[0].rsplit(".", 1)[1]))
        return {}
    return {"Err": "unknown method %s" % method}


ANSWER = {"volume": volume, "network": network, "ipam": ipam}[KIND]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            req = json.loads(raw) if raw.strip() else {}
        except ValueError:
            req = None
        with LOCK:
            with open(os.path.join(ROOT, "calls.log"), "a") as log:
                log.write("%s %s\n" % (self.path, (req or {}).get("Name") or (req or {}).get("Address", "")))
            try:
                reply = ANSWER(self.path, req) if isinstance(req, dict) else {"Err": "malformed request"}
            except RuntimeError as e:
                reply = {"Err": str(e)}
        body = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.plugins.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

    def address_string(self):
        return "unix"


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCKET):
    os.unlink(SOCKET)
Server(SOCKET, Handler).serve_forever()
