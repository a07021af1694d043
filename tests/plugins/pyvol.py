#!/usr/bin/env python3
"""pyvol: a Docker volume plugin in Python's standard library only, as
third parties write them: HTTP on a UNIX socket, Docker's VolumeDriver
protocol. Volumes are directories under ROOT; every call is appended to
ROOT/calls.log so a test can see what the engine asked.

Usage: pyvol.py SOCKET ROOT
"""
import http.server
import json
import os
import shutil
import socketserver
import sys
import threading

SOCKET, ROOT = sys.argv[1], sys.argv[2]
VOLUMES = os.path.join(ROOT, "volumes")
os.makedirs(VOLUMES, exist_ok=True)
LOCK = threading.Lock()
USERS = {}  # volume name -> set of container IDs that mounted it


def path_of(name):
    return os.path.join(VOLUMES, name)


def answer(method, req):
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
                log.write("%s %s\n" % (self.path, (req or {}).get("Name", "")))
            reply = answer(self.path, req) if isinstance(req, dict) else {"Err": "malformed request"}
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
