//! Networks through berthd, driven by the stock docker CLI, the Python
//! docker SDK and berth: bridge networks (addresses, routes, reachability,
//! isolation, internal networks), names resolved by the embedded DNS
//! (name, alias, ID prefix, forwarding to upstream servers), published
//! ports reached from the "host" and from another namespace, connect and
//! disconnect, kill -9 of berthd, and bad input. Every berthd runs in a
//! network namespace of its own (`Berthd::netns`), its "host"; the test
//! namespaces used as other machines are made here and removed at the end.

use std::process::{Command, Stdio};

use berth_tests::{docker, eventually, inspect, ok, out, require_daemon, text, Berthd};

/// Links in berthd's namespace, by name.
fn host_links(d: &Berthd) -> Vec<String> {
    ok(d.on_host("ip").args(["-o", "link"]))
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect()
}

/// Whether the kernel makes 802.1q links (tried in berthd's namespace).
fn kernel_has_vlans(d: &Berthd) -> bool {
    let made = d
        .on_host("ip")
        .args(["link", "add", "vlprobe0", "type", "veth", "peer", "name", "vlprobe1"])
        .status()
        .unwrap()
        .success()
        && d.on_host("ip")
            .args(["link", "add", "link", "vlprobe0", "name", "vlprobe0.5", "type", "vlan", "id", "5"])
            .status()
            .unwrap()
            .success();
    let _ = d.on_host("ip").args(["link", "del", "vlprobe0"]).status();
    made
}

/// A namespace of the test's own, pinned under `dir`, with a veth to
/// berthd's namespace: `addr` here, `peer` on berthd's side (both /24).
struct Neighbour {
    path: std::path::PathBuf,
}

impl Neighbour {
    fn new(d: &Berthd, dir: &std::path::Path, link: &str, addr: &str, peer: &str) -> Neighbour {
        let path = dir.join(format!("ns-{link}"));
        berth_net::netns::create(&path).unwrap();
        let n = Neighbour { path };
        ok(d.on_host("ip").args(["link", "add", link, "type", "veth", "peer", "name", "eth0"]));
        ok(d.on_host("ip")
            .args(["link", "set", "eth0", "netns", &n.path.display().to_string()]));
        ok(d.on_host("ip").args(["addr", "add", &format!("{peer}/24"), "dev", link]));
        ok(d.on_host("ip").args(["link", "set", link, "up"]));
        ok(n.run("ip").args(["addr", "add", &format!("{addr}/24"), "dev", "eth0"]));
        ok(n.run("ip").args(["link", "set", "eth0", "up"]));
        n
    }

    fn run(&self, program: &str) -> Command {
        berth_tests::in_netns(&self.path, program)
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        let _ = berth_net::netns::remove(&self.path);
    }
}

#[test]
fn bridge_networks_reach_resolve_and_isolate() {
    let Some(d) = require_daemon("bridge_networks_reach_resolve_and_isolate") else {
        return;
    };
    // The predefined networks, as docker has them.
    let ls = ok(d.docker().args(["network", "ls", "--format", "{{.Name}} {{.Driver}}"]));
    assert_eq!(ls, "bridge bridge\nhost host\nnone null", "{ls}");
    // The default bridge: berth0 on 172.17.0.0/16, gateway .1.
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "ip -4 -o addr show eth0; ip route; cat /etc/hosts",
        ],
    );
    let s = out(&o);
    assert!(s.contains("inet 172.17.0.2/16"), "{}", text(&o));
    assert!(s.contains("default via 172.17.0.1 dev eth0"), "{s}");
    assert!(
        s.lines().any(|l| l.starts_with("172.17.0.2\t")),
        "the container's address names it: {s}"
    );
    assert!(host_links(&d).contains(&"berth0".to_string()));

    ok(d.docker().args(["network", "create", "front"]));
    let front_bridge = format!(
        "br-{}",
        &ok(d.docker().args(["network", "inspect", "-f", "{{.Id}}", "front"]))[..12]
    );
    let bridge_mac = || {
        let link = ok(d.on_host("ip").args(["-o", "link", "show", &front_bridge]));
        link.split("link/ether ")
            .nth(1)
            .unwrap_or("")
            .split(' ')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let mac_at_create = bridge_mac();
    ok(d.docker().args([
        "network",
        "create",
        "--subnet",
        "10.77.0.0/24",
        "--gateway",
        "10.77.0.254",
        "--ip-range",
        "10.77.0.128/25",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "back",
    ]));
    // Addresses come from the range; the MTU is the network's.
    let o = docker(
        &d,
        &["run", "--rm", "--network", "back", "busybox", "ip", "-o", "addr", "show", "eth0"],
    );
    assert!(out(&o).contains("inet 10.77.0.128/24"), "{}", text(&o));
    let o = docker(
        &d,
        &["run", "--rm", "--network", "back", "busybox", "ip", "-o", "link", "show", "eth0"],
    );
    assert!(out(&o).contains("mtu 1400"), "{}", text(&o));
    let web = berth_tests::web_server(d.docker(), "web", &["--network", "front", "--network-alias", "www"]);
    let web_ip = inspect(&d, "web", "{{.NetworkSettings.Networks.front.IPAddress}}");
    assert_eq!(web_ip, "172.18.0.2", "the next default pool after the bridge's");
    assert_eq!(
        inspect(&d, "web", "{{.NetworkSettings.Networks.front.MacAddress}}"),
        "02:42:ac:12:00:02"
    );
    // Reached by name, alias and ID prefix, over TCP and ICMP.
    let short = &web[..12];
    let script = format!(
        "for n in web www {short}; do wget -qO- http://$n/hostname || exit 1; done; ping -c1 -W2 web >/dev/null && echo pinged; \
         nslookup web 127.0.0.11 | grep -c {web_ip}; cat /etc/resolv.conf"
    );
    let o = docker(&d, &["run", "--rm", "--network", "front", "busybox", "sh", "-c", &script]);
    let s = out(&o);
    assert_eq!(s.matches(short).count(), 3, "{}", text(&o));
    assert!(s.contains("pinged"), "{s}");
    assert!(s.contains("nameserver 127.0.0.11"), "{s}");
    // A fixed address on the second network, and no way across.
    let o = docker(
        &d,
        &[
            "run", "--rm", "--network", "back", "--ip", "10.77.0.9", "busybox", "sh", "-c",
            &format!("ip -4 -o addr show eth0; ip route | grep default; timeout 2 wget -qO- http://{web_ip}/hostname || echo isolated; nslookup web 127.0.0.11 >/dev/null || echo unknown"),
        ],
    );
    let s = out(&o);
    assert!(s.contains("inet 10.77.0.9/24"), "{}", text(&o));
    assert!(s.contains("default via 10.77.0.254"), "{s}");
    assert!(
        s.contains("isolated") && s.contains("unknown"),
        "no route and no name across networks: {s}"
    );
    // Connected to both, a container reaches both.
    ok(d.docker().args([
        "create",
        "--name",
        "both",
        "--network",
        "back",
        "busybox",
        "sh",
        "-c",
        "wget -qO- http://web/hostname && ip -o link | grep -c eth",
    ]));
    ok(d.docker().args(["network", "connect", "front", "both"]));
    let o = docker(&d, &["start", "-a", "both"]);
    assert_eq!(out(&o), format!("{short}\n2"), "{}", text(&o));
    // Live connect and disconnect of a running container.
    ok(d.docker()
        .args(["run", "-d", "--name", "roamer", "--network", "back", "busybox", "sleep", "100"]));
    ok(d.docker().args(["network", "connect", "--alias", "wanderer", "front", "roamer"]));
    let o = docker(&d, &["exec", "roamer", "wget", "-qO-", "http://web/hostname"]);
    assert_eq!(out(&o), short, "{}", text(&o));
    let o = docker(&d, &["exec", "web", "nslookup", "wanderer", "127.0.0.11"]);
    assert!(o.status.success(), "an alias given at connect: {}", text(&o));
    ok(d.docker().args(["network", "disconnect", "front", "roamer"]));
    let o = docker(&d, &["exec", "roamer", "ip", "-o", "link"]);
    assert!(!out(&o).contains("eth1"), "{}", text(&o));
    // Sharing another container's namespace.
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "container:web",
            "busybox",
            "wget",
            "-qO-",
            "http://127.0.0.1/hostname",
        ],
    );
    assert_eq!(out(&o), short, "{}", text(&o));
    // An internal network reaches its own members only.
    ok(d.docker().args(["network", "create", "--internal", "inner"]));
    berth_tests::web_server(d.docker(), "in1", &["--network", "inner"]);
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "inner",
            "busybox",
            "sh",
            "-c",
            "wget -qO- http://in1/hostname >/dev/null && echo near; ping -c1 -W1 172.17.0.1 >/dev/null || echo cut-off",
        ],
    );
    assert_eq!(out(&o), "near\ncut-off", "{}", text(&o));
    // A network in use is not removed; an unused one is, with its bridge.
    let o = docker(&d, &["network", "rm", "front"]);
    assert!(!o.status.success() && text(&o).contains("active endpoints"), "{}", text(&o));
    assert!(host_links(&d).contains(&front_bridge));
    // Its MAC is its own: ports joining do not change it under the
    // containers' ARP caches.
    assert_eq!(bridge_mac(), mac_at_create);
    ok(d.docker().args(["rm", "-f", "web", "roamer", "both", "in1"]));
    ok(d.docker().args(["network", "rm", "front", "back", "inner"]));
    let links = host_links(&d);
    assert_eq!(
        links,
        vec!["lo".to_string(), "berth0".to_string()],
        "no bridge or veth left: {links:?}"
    );
}

#[test]
fn published_ports_are_reached_from_the_host_and_beyond() {
    let Some(d) = require_daemon("published_ports_are_reached_from_the_host_and_beyond") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    ok(d.docker().args([
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1::81",
        "--expose",
        "82",
        "-P",
        "busybox",
        "sh",
        "-c",
        "httpd -p 80 -h /etc; httpd -p 81 -h /etc; httpd -f -p 82 -h /etc",
    ]));
    let id = ok(d.docker().args(["inspect", "-f", "{{.Id}}", "web"]));
    let port = ok(d.docker().args(["port", "web"]));
    assert!(port.contains("80/tcp -> 0.0.0.0:8080"), "{port}");
    let loopback_port: u16 = ok(d.docker().args([
        "inspect",
        "-f",
        "{{(index (index .NetworkSettings.Ports \"81/tcp\") 0).HostPort}}",
        "web",
    ]))
    .parse()
    .unwrap();
    let random_port: u16 = ok(d.docker().args([
        "inspect",
        "-f",
        "{{(index (index .NetworkSettings.Ports \"82/tcp\") 0).HostPort}}",
        "web",
    ]))
    .parse()
    .unwrap();
    let ps = ok(d.docker().args(["ps", "--format", "{{.Ports}}"]));
    assert!(
        ps.contains("0.0.0.0:8080->80/tcp") && ps.contains(&format!("127.0.0.1:{loopback_port}->81/tcp")),
        "{ps}"
    );
    // From the host itself, on 127.0.0.1 and on its own address.
    let short = &id[..12];
    for p in [8080, loopback_port, random_port] {
        let o = d
            .on_host("timeout")
            .args(["3", "wget", "-qO-", &format!("http://127.0.0.1:{p}/hostname")])
            .output()
            .unwrap();
        assert_eq!(out(&o), short, "port {p}: {}", text(&o));
    }
    // From a container on the same bridge through the host (hairpin NAT).
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "timeout",
            "3",
            "wget",
            "-qO-",
            "http://172.17.0.1:8080/hostname",
        ],
    );
    assert_eq!(out(&o), short, "{}", text(&o));
    // From another machine: a namespace joined to the host by a veth.
    let n = Neighbour::new(&d, dir.path(), "vtest0", "192.0.2.2", "192.0.2.1");
    let o = n
        .run("timeout")
        .args(["3", "wget", "-qO-", "http://192.0.2.1:8080/hostname"])
        .output()
        .unwrap();
    assert_eq!(out(&o), short, "{}", text(&o));
    // The port bound to 127.0.0.1 is not offered outside.
    let o = n
        .run("timeout")
        .args(["2", "wget", "-qO-", &format!("http://192.0.2.1:{loopback_port}/hostname")])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    // One host port, one container.
    let o = docker(&d, &["run", "-d", "--name", "clash", "-p", "8080:80", "busybox", "sleep", "10"]);
    assert!(
        !o.status.success() && text(&o).contains("port is already allocated"),
        "{}",
        text(&o)
    );
    // Stopped: the rules go; started again: they come back.
    ok(d.docker().args(["stop", "-t", "1", "web"]));
    let rules = ok(d.on_host("nft").args(["list", "table", "inet", "berth"]));
    assert!(!rules.contains("8080 :"), "the port's element goes: {rules}");
    assert!(rules.contains("ports_any"), "{rules}");
    ok(d.docker().args(["start", "web"]));
    eventually(10, "the port back", || {
        d.on_host("timeout")
            .args(["1", "wget", "-qO-", "http://127.0.0.1:8080/hostname"])
            .output()
            .unwrap()
            .stdout
            .starts_with(short.as_bytes())
    });
    ok(d.docker().args(["rm", "-f", "web", "clash"]));
    let rules = ok(d.on_host("nft").args(["list", "table", "inet", "berth"]));
    assert!(!rules.contains("elements"), "{rules}");
}

#[test]
fn names_not_ours_are_forwarded_upstream() {
    let Some(d) = require_daemon("names_not_ours_are_forwarded_upstream") else {
        return;
    };
    // An upstream server on the host's loopback: answers one A question
    // for anything with 203.0.113.7.
    std::fs::write(d.resolv_conf(), "nameserver 127.0.0.1\nsearch example.test\n").unwrap();
    let sock = berth_net::netns::run_in(&d.netns(), || std::net::UdpSocket::bind("127.0.0.1:53")).unwrap();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (n, peer) = sock.recv_from(&mut buf).unwrap();
        let mut reply = buf[..n].to_vec();
        reply[2] |= 0x80;
        reply[3] = 0x80;
        reply[7] = 1;
        reply[10] = 0;
        reply[11] = 0;
        // The question ends after its name and 4 bytes; any EDNS record goes.
        let end = 12 + reply[12..].iter().position(|b| *b == 0).unwrap() + 5;
        reply.truncate(end);
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 7]);
        sock.send_to(&reply, peer).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    ok(d.docker().args(["network", "create", "lan"]));
    // A container on internal networks only sends no question out
    // (else the name itself carries data out, CVE-2024-29018).
    ok(d.docker().args(["network", "create", "--internal", "sealed"]));
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "sealed",
            "busybox",
            "nslookup",
            "secret.leak",
            "127.0.0.11",
        ],
    );
    assert!(!out(&o).contains("203.0.113.7"), "{}", text(&o));
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "lan",
            "busybox",
            "sh",
            "-c",
            "nslookup -type=a far.away 127.0.0.11; cat /etc/resolv.conf",
        ],
    );
    let s = out(&o);
    assert!(s.contains("203.0.113.7"), "{}", text(&o));
    assert!(s.contains("search example.test"), "the host's search domains: {s}");
    let asked = server.join().unwrap();
    assert!(
        asked.contains("far") && !asked.contains("secret"),
        "the lan question went upstream first, the sealed one never: {asked}"
    );
    // --dns on the default bridge is written as given.
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "corp.test",
            "--add-host",
            "db:10.1.2.3",
            "--hostname",
            "box",
            "busybox",
            "sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts; hostname",
        ],
    );
    let s = out(&o);
    assert!(s.contains("nameserver 192.0.2.53") && s.contains("search corp.test"), "{s}");
    assert!(s.contains("10.1.2.3\tdb") && s.ends_with("box"), "{s}");
}

#[test]
fn kill_9_of_berthd_keeps_networking_and_leaks_nothing() {
    let Some(mut d) = require_daemon("kill_9_of_berthd_keeps_networking_and_leaks_nothing") else {
        return;
    };
    ok(d.docker().args(["network", "create", "app"]));
    berth_tests::web_server(d.docker(), "web", &["--network", "app", "-p", "9090:80"]);
    ok(d.docker()
        .args(["run", "-d", "--name", "brief", "--network", "app", "busybox", "sleep", "2"]));
    let brief_ip = inspect(&d, "brief", "{{.NetworkSettings.Networks.app.IPAddress}}");
    let short = ok(d.docker().args(["inspect", "-f", "{{.Id}}", "web"]))[..12].to_string();
    d.crash();
    // As a crash between taking an address and recording it leaves it
    // (a fault made by hand: the window is too small to hit on purpose).
    let ipam = d.data_root().join("networks/ipam.json");
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&ipam).unwrap()).unwrap();
    let pools = state["pools"].as_object_mut().unwrap();
    let app = pools.values_mut().find(|p| p["subnet"] == "172.18.0.0/16").unwrap();
    app["allocated"].as_array_mut().unwrap().push(serde_json::json!("172.18.0.77"));
    std::fs::write(&ipam, state.to_string()).unwrap();
    d.respawn().unwrap();
    let o = docker(&d, &["run", "--rm", "--network", "app", "--ip", "172.18.0.77", "busybox", "true"]);
    assert!(o.status.success(), "an address no container holds is free again: {}", text(&o));
    // Running containers keep their links, names and ports.
    let o = docker(
        &d,
        &["run", "--rm", "--network", "app", "busybox", "wget", "-qO-", "http://web/hostname"],
    );
    assert_eq!(out(&o), short, "{}", text(&o));
    let o = d
        .on_host("timeout")
        .args(["3", "wget", "-qO-", "http://127.0.0.1:9090/hostname"])
        .output()
        .unwrap();
    assert_eq!(out(&o), short, "{}", text(&o));
    // One that ended while berthd was down gave its address back.
    eventually(10, "brief to end", || inspect(&d, "brief", "{{.State.Status}}") == "exited");
    ok(d.docker().args(["rm", "brief"]));
    let o = docker(&d, &["run", "--rm", "--network", "app", "--ip", &brief_ip, "busybox", "true"]);
    assert!(o.status.success(), "the address is free again: {}", text(&o));
    ok(d.docker().args(["rm", "-f", "web"]));
    ok(d.docker().args(["network", "rm", "app"]));
    let links = host_links(&d);
    assert_eq!(links, vec!["lo".to_string(), "berth0".to_string()], "{links:?}");
    let rules = ok(d.on_host("nft").args(["list", "table", "inet", "berth"]));
    assert!(!rules.contains("elements") && !rules.contains("br-"), "{rules}");
}

#[test]
fn bad_network_input_is_refused() {
    let Some(d) = require_daemon("bad_network_input_is_refused") else {
        return;
    };
    ok(d.docker().args(["network", "create", "--subnet", "10.20.0.0/16", "one"]));
    let refused = |args: &[&str], says: &str| {
        let o = docker(&d, args);
        assert!(!o.status.success() && text(&o).contains(says), "{args:?}: {}", text(&o));
    };
    refused(
        &["network", "create", "--subnet", "10.20.5.0/24", "two"],
        "overlaps with 10.20.0.0/16",
    );
    // The docker CLI checks this one itself; berth leaves it to berthd.
    let o = d
        .berth()
        .args(["network", "create", "--subnet", "10.30.0.0/24", "--gateway", "10.31.0.1", "two"])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && text(&o).contains("gateway 10.31.0.1 is not in subnet 10.30.0.0/24"),
        "{}",
        text(&o)
    );
    refused(&["network", "create", "--subnet", "10.30.0.300/24", "two"], "invalid subnet");
    refused(&["network", "create", "one"], "already exists");
    refused(&["network", "create", "-d", "nosuch", "two"], "nosuch");
    refused(&["network", "create", "-d", "macvlan", "-o", "parent=nosuch0", "two"], "nosuch0");
    refused(&["network", "rm", "bridge"], "pre-defined");
    refused(&["run", "--rm", "--network", "nowhere", "busybox", "true"], "nowhere");
    refused(&["run", "--rm", "--ip", "172.17.0.9", "busybox", "true"], "user defined networks");
    refused(
        &["run", "--rm", "--network", "one", "--ip", "10.99.0.2", "busybox", "true"],
        "not in a subnet",
    );
    refused(&["run", "--rm", "-p", "80/sctp", "busybox", "true"], "80/sctp");
    let o = docker(&d, &["network", "ls", "-q"]);
    assert_eq!(out(&o).lines().count(), 4, "nothing made by the refused requests: {}", text(&o));
    assert_eq!(ok(d.docker().args(["ps", "-aq"])), "");
}

#[test]
fn python_sdk_and_berth_cli_manage_networks() {
    let Some(d) = require_daemon("python_sdk_and_berth_cli_manage_networks") else {
        return;
    };
    let script = format!(
        r#"
import docker
c = docker.DockerClient(base_url='{}')
ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet='10.66.0.0/24', gateway='10.66.0.1')])
n = c.networks.create('sdknet', driver='bridge', ipam=ipam, labels={{'team': 'a'}})
web = c.containers.run('busybox', ['httpd', '-f', '-p', '80', '-h', '/etc'], name='sdkweb', network='sdknet', detach=True, ports={{'80/tcp': 8181}})
web.reload()
assert web.attrs['NetworkSettings']['Networks']['sdknet']['IPAddress'] == '10.66.0.2', web.attrs['NetworkSettings']
assert web.ports == {{'80/tcp': [{{'HostIp': '0.0.0.0', 'HostPort': '8181'}}]}}, web.ports
n.reload()
assert [x.name for x in n.containers] == ['sdkweb'], n.containers
out = c.containers.run('busybox', ['wget', '-qO-', 'http://sdkweb/hostname'], network='sdknet', remove=True)
assert out.decode().strip() == web.id[:12], out
assert [x.name for x in c.networks.list(filters={{'label': 'team=a'}})] == ['sdknet']
n.disconnect(web)
web.reload()
assert 'sdknet' not in web.attrs['NetworkSettings']['Networks']
web.remove(force=True)
n.remove()
print('ok')
"#,
        d.host()
    );
    let o = Command::new("python3").arg("-c").arg(&script).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // berth's own network commands.
    ok(d.berth()
        .args(["network", "create", "--subnet", "10.88.0.0/24", "--label", "x=y", "bnet"]));
    let ls = ok(d.berth().args(["network", "ls"]));
    assert!(ls.starts_with("NETWORK ID") && ls.contains("bnet") && ls.contains("bridge"), "{ls}");
    assert_eq!(
        ok(d.berth()
            .args(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bnet"])),
        "10.88.0.0/24"
    );
    berth_tests::web_server(d.berth(), "b1", &["--network", "bnet", "--network-alias", "svc", "-p", "7070:80"]);
    let o = d
        .berth()
        .args(["run", "--rm", "--network", "bnet", "busybox", "wget", "-qO-", "http://svc/hostname"])
        .output()
        .unwrap();
    assert!(o.status.success() && !out(&o).is_empty(), "{}", text(&o));
    assert_eq!(ok(d.berth().args(["port", "b1", "80"])), "0.0.0.0:7070");
    ok(d.berth().args(["network", "disconnect", "bnet", "b1"]));
    ok(d.berth().args(["rm", "-f", "b1"]));
    assert_eq!(ok(d.berth().args(["network", "prune", "-f"])), "Deleted Networks:\nbnet");
    assert_eq!(ok(d.berth().args(["network", "ls", "-q"])).lines().count(), 3);
}

#[test]
fn macvlan_networks_put_containers_on_the_parents_segment() {
    let Some(d) = require_daemon("macvlan_networks_put_containers_on_the_parents_segment") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The parent is a veth whose other end is a test "router" namespace.
    let router = Neighbour::new(&d, dir.path(), "mvp0", "192.168.60.1", "192.168.61.1");
    ok(d.docker().args([
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=mvp0",
        "--subnet",
        "192.168.60.0/24",
        "--gateway",
        "192.168.60.1",
        "mv",
    ]));
    berth_tests::web_server(d.docker(), "m1", &["--network", "mv", "--ip", "192.168.60.10"]);
    let short = ok(d.docker().args(["inspect", "-f", "{{.Id}}", "m1"]))[..12].to_string();
    let o = docker(
        &d,
        &["run", "--rm", "--network", "mv", "busybox", "sh", "-c", "wget -qO- http://m1/hostname; ping -c1 -W2 192.168.60.1 >/dev/null && echo router; ip -o link show eth0; ip route | grep default"],
    );
    let s = out(&o);
    assert!(s.starts_with(&short) && s.contains("router"), "{}", text(&o));
    assert!(s.contains("macvlan") || s.contains("eth0@"), "{s}");
    assert!(s.contains("default via 192.168.60.1"), "{s}");
    // The segment reaches the container directly, with its own MAC.
    let o = router
        .run("timeout")
        .args(["3", "wget", "-qO-", "http://192.168.60.10/hostname"])
        .output()
        .unwrap();
    assert_eq!(out(&o), short, "{}", text(&o));
    let neigh = ok(router.run("ip").args(["neigh", "show", "192.168.60.10"]));
    assert!(neigh.contains("02:42:c0:a8:3c:0a"), "{neigh}");
    // parent=IF.VLAN makes the 802.1q subinterface, where the kernel has
    // 802.1q (this one may not: then the refusal says so, and nothing is left).
    let o = docker(
        &d,
        &[
            "network",
            "create",
            "-d",
            "macvlan",
            "-o",
            "parent=mvp0.30",
            "--subnet",
            "192.168.70.0/24",
            "tagged",
        ],
    );
    if kernel_has_vlans(&d) {
        assert!(o.status.success(), "{}", text(&o));
        assert!(host_links(&d).contains(&"mvp0.30".to_string()));
        ok(d.docker().args(["network", "rm", "tagged"]));
    } else {
        assert!(!o.status.success() && text(&o).contains("802.1q"), "{}", text(&o));
    }
    assert!(!host_links(&d).contains(&"mvp0.30".to_string()), "the VLAN goes with its network");
    // private mode: siblings do not reach each other.
    let _segment = Neighbour::new(&d, dir.path(), "mvp2", "192.168.70.1", "192.168.71.1");
    ok(d.docker().args([
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=mvp2",
        "-o",
        "macvlan_mode=private",
        "--subnet",
        "192.168.70.0/24",
        "priv",
    ]));
    berth_tests::web_server(d.docker(), "p1", &["--network", "priv", "--ip", "192.168.70.10"]);
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "priv",
            "busybox",
            "sh",
            "-c",
            "ping -c1 -W2 192.168.70.1 >/dev/null && echo router; timeout 2 wget -qO- http://192.168.70.10/hostname || echo apart",
        ],
    );
    assert_eq!(out(&o), "router\napart", "private: no traffic between siblings: {}", text(&o));
    // passthru: one container at a time.
    let _second = Neighbour::new(&d, dir.path(), "mvp1", "192.168.80.1", "192.168.81.1");
    ok(d.docker().args([
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=mvp1",
        "-o",
        "macvlan_mode=passthru",
        "--subnet",
        "192.168.80.0/24",
        "pt",
    ]));
    ok(d.docker()
        .args(["run", "-d", "--name", "only", "--network", "pt", "busybox", "sleep", "100"]));
    let o = docker(&d, &["run", "--rm", "--network", "pt", "busybox", "true"]);
    assert!(!o.status.success() && text(&o).contains("one container at a time"), "{}", text(&o));
    let o = docker(
        &d,
        &[
            "network",
            "create",
            "-d",
            "macvlan",
            "-o",
            "parent=mvp0",
            "-o",
            "macvlan_mode=vepa",
            "--subnet",
            "192.168.90.0/24",
            "again",
        ],
    );
    assert!(!o.status.success() && text(&o).contains("already used"), "{}", text(&o));
    ok(d.docker().args(["rm", "-f", "m1", "p1", "only"]));
    ok(d.docker().args(["network", "rm", "mv", "priv", "pt"]));
    // vepa: the segment reaches the container.
    ok(d.docker().args([
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=mvp0",
        "-o",
        "macvlan_mode=vepa",
        "--subnet",
        "192.168.60.0/24",
        "--gateway",
        "192.168.60.1",
        "vepa",
    ]));
    berth_tests::web_server(d.docker(), "v1", &["--network", "vepa", "--ip", "192.168.60.20"]);
    let v1 = ok(d.docker().args(["inspect", "-f", "{{.Id}}", "v1"]))[..12].to_string();
    let o = router
        .run("timeout")
        .args(["3", "wget", "-qO-", "http://192.168.60.20/hostname"])
        .output()
        .unwrap();
    assert_eq!(out(&o), v1, "{}", text(&o));
    ok(d.docker().args(["rm", "-f", "v1"]));
    ok(d.docker().args(["network", "rm", "vepa"]));
}

/// etcd in a namespace of its own; killed when dropped.
/// A server process of the test's, killed on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn overlay_networks_span_three_hosts() {
    if !berth_tests::require_root("overlay_networks_span_three_hosts")
        || !berth_tests::require(
            "overlay_networks_span_three_hosts",
            berth_tests::has_program("etcd"),
            "etcd (Debian's etcd-server)",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The "switch": a namespace with a bridge the hosts hang on, and the
    // one etcd on that network.
    let switch = dir.path().join("switch");
    berth_net::netns::create(&switch).unwrap();
    struct Pin(std::path::PathBuf);
    impl Drop for Pin {
        fn drop(&mut self) {
            let _ = berth_net::netns::remove(&self.0);
        }
    }
    let _switch_pin = Pin(switch.clone());
    let on_switch = |program: &str| berth_tests::in_netns(&switch, program);
    // A MAC of its own: a bridge without one takes its lowest port's, and
    // would change it as hosts are added, under the hosts' ARP caches.
    ok(on_switch("ip").args(["link", "add", "sw0", "address", "02:00:00:00:00:64", "type", "bridge"]));
    ok(on_switch("ip").args(["addr", "add", "10.99.0.100/24", "dev", "sw0"]));
    ok(on_switch("ip").args(["link", "set", "sw0", "up"]));
    let etcd = Server(
        on_switch("etcd")
            .args(["--data-dir", &dir.path().join("etcd").display().to_string()])
            .args([
                "--listen-client-urls",
                "http://10.99.0.100:2379",
                "--advertise-client-urls",
                "http://10.99.0.100:2379",
            ])
            .args(["--listen-peer-urls", "http://127.0.0.1:2380"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("etcd.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    // Serving, not only listening: a write goes through.
    eventually(60, "etcd to serve", || {
        berth_net::netns::run_in(&switch, || berth_net::etcd::Etcd::new("10.99.0.100:2379")?.put("/probe", b"1")).is_ok()
    });
    let hosts: Vec<Berthd> = (1..=3)
        .map(|i| {
            let ip = format!("10.99.0.{i}");
            let d = Berthd::with_busybox_and(&["--cluster-store", "etcd://10.99.0.100:2379", "--cluster-advertise", &ip]).unwrap();
            // Host i on the switch: a veth from the switch into its namespace.
            let port = format!("port{i}");
            ok(on_switch("ip").args(["link", "add", &port, "type", "veth", "peer", "name", "uplink"]));
            ok(on_switch("ip").args(["link", "set", "uplink", "netns", &d.netns().display().to_string()]));
            ok(on_switch("ip").args(["link", "set", &port, "master", "sw0", "up"]));
            ok(d.on_host("ip").args(["addr", "add", &format!("{ip}/24"), "dev", "uplink"]));
            ok(d.on_host("ip").args(["link", "set", "uplink", "up"]));
            eventually(30, "the host to reach etcd", || {
                berth_net::netns::run_in(&d.netns(), || berth_net::etcd::Etcd::new("10.99.0.100:2379")?.get("/probe")).is_ok()
            });
            d
        })
        .collect();
    // Made on one host, seen on all.
    ok(hosts[0].docker().args(["network", "create", "-d", "overlay", "--attachable", "ov"]));
    for h in &hosts {
        let ls = || {
            ok(h.docker()
                .args(["network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}} {{.Scope}}"]))
        };
        eventually(10, "the network on every host", || ls() == "ov global");
    }
    let subnet = ok(hosts[1]
        .docker()
        .args(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "ov"]));
    assert_eq!(subnet, "10.0.0.0/24");
    // A web server on hosts 1 and 2, a client on host 3.
    let mut ids = Vec::new();
    for (i, h) in hosts.iter().take(2).enumerate() {
        let name = format!("web{}", i + 1);
        let id = berth_tests::web_server(h.docker(), &name, &["--network", "ov"]);
        ids.push(id[..12].to_string());
    }
    let ip1 = ok(hosts[0]
        .docker()
        .args(["inspect", "-f", "{{.NetworkSettings.Networks.ov.IPAddress}}", "web1"]));
    let ip2 = ok(hosts[1]
        .docker()
        .args(["inspect", "-f", "{{.NetworkSettings.Networks.ov.IPAddress}}", "web2"]));
    assert_ne!(ip1, ip2, "one address space across hosts");
    let script = format!("timeout 3 wget -qO- http://web1/hostname; timeout 3 wget -qO- http://{ip2}/hostname; timeout 3 wget -qO- http://web2/hostname; ping -c1 -W2 web1 >/dev/null && echo pinged");
    let o = hosts[2]
        .docker()
        .args(["run", "--rm", "--network", "ov", "busybox", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        out(&o),
        format!("{}\n{}\n{}\npinged", ids[0], ids[1], ids[1]),
        "{}\n{}",
        text(&o),
        hosts[2].log()
    );
    // Out of the overlay, through the host's gateway bridge (NAT): etcd's
    // address is on the hosts' underlay only.
    let o = hosts[2]
        .docker()
        .args([
            "run",
            "--rm",
            "--network",
            "ov",
            "busybox",
            "sh",
            "-c",
            "ip route | grep default; timeout 5 wget -qO- http://10.99.0.100:2379/version",
        ])
        .output()
        .unwrap();
    let s = out(&o);
    assert!(
        s.contains("default via") && s.contains("dev eth1") && s.contains("etcdserver"),
        "{}",
        text(&o)
    );
    assert!(ok(hosts[2].docker().args(["network", "ls", "--format", "{{.Name}}"])).contains("docker_gwbridge"));
    // Its containers do not talk to each other across it (no ICC: the
    // ports are isolated).
    ok(hosts[2]
        .docker()
        .args(["run", "-d", "--name", "lonely", "--network", "ov", "busybox", "sleep", "60"]));
    let ports = ok(hosts[2].on_host("bridge").args(["-d", "link", "show", "master", "docker_gwbridge"]));
    assert!(ports.contains("isolated on"), "{ports}");
    ok(hosts[2].docker().args(["rm", "-f", "lonely"]));
    // Host 1 has host 2's endpoint programmed: its MAC behind host 2's VTEP,
    // its IP at that MAC.
    let mac2 = ok(hosts[1]
        .docker()
        .args(["inspect", "-f", "{{.NetworkSettings.Networks.ov.MacAddress}}", "web2"]));
    let net_id = ok(hosts[0].docker().args(["network", "inspect", "-f", "{{.Id}}", "ov"]));
    let vx = format!("vx-{}", &net_id[..10]);
    let fdb = ok(hosts[0].on_host("bridge").args(["fdb", "show", "dev", &vx]));
    assert!(fdb.contains(&format!("{mac2} dst 10.99.0.2")), "{fdb}");
    let neigh = ok(hosts[0].on_host("ip").args(["neigh", "show", "dev", &vx]));
    assert!(neigh.contains(&format!("{ip2} lladdr {mac2}")), "{neigh}");
    // Removed on one host, gone everywhere (devices included).
    let o = hosts[1].docker().args(["network", "rm", "ov"]).output().unwrap();
    assert!(!o.status.success() && text(&o).contains("active endpoints"), "{}", text(&o));
    ok(hosts[0].docker().args(["rm", "-f", "web1"]));
    ok(hosts[1].docker().args(["rm", "-f", "web2"]));
    ok(hosts[2].docker().args(["network", "rm", "ov"]));
    for h in &hosts {
        eventually(10, "the overlay's devices to go", || {
            !ok(h.on_host("ip").args(["-o", "link"])).contains("vx-")
        });
        assert_eq!(ok(h.docker().args(["network", "ls", "-q", "--filter", "driver=overlay"])), "");
    }
    // The conformance kit on the built-in overlay driver, from the switch
    // (where etcd is reached) as a fourth host.
    let kit = on_switch(berth_tests::bin("berth").to_str().unwrap())
        .args(["plugin", "check", "--interface", "network"])
        .args([
            "--cluster-store",
            "etcd://10.99.0.100:2379",
            "--cluster-advertise",
            "10.99.0.100",
            "overlay",
        ])
        .output()
        .unwrap();
    assert!(kit.status.success() && text(&kit).contains(" 0 failed"), "{}", text(&kit));
    drop(hosts);
    drop(etcd);
}

#[test]
fn ipv6_where_asked() {
    let Some(d) = require_daemon("ipv6_where_asked") else {
        return;
    };
    ok(d.docker().args([
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.55.0.0/24",
        "--subnet",
        "fd00:b::/64",
        "dual",
    ]));
    berth_tests::web_server(d.docker(), "web6", &["--network", "dual"]);
    let v6 = inspect(&d, "web6", "{{.NetworkSettings.Networks.dual.GlobalIPv6Address}}");
    assert_eq!(v6, "fd00:b::2", "the first address after the gateway");
    assert_eq!(inspect(&d, "web6", "{{.NetworkSettings.Networks.dual.IPv6Gateway}}"), "fd00:b::1");
    let short = ok(d.docker().args(["inspect", "-f", "{{.Id}}", "web6"]))[..12].to_string();
    let o = docker(
        &d,
        &[
            "run", "--rm", "--network", "dual", "--ip6", "fd00:b::99", "busybox", "sh", "-c",
            "ip -6 -o addr show eth0 scope global; ip -6 route | grep default; wget -qO- http://[fd00:b::2]/hostname; nslookup -type=aaaa web6 127.0.0.11 | grep -c fd00:b::2; ping -6 -c1 -W2 fd00:b::1 >/dev/null && echo gateway",
        ],
    );
    let s = out(&o);
    assert!(s.contains("inet6 fd00:b::99/64"), "{}", text(&o));
    assert!(s.contains("default via fd00:b::1"), "{s}");
    assert!(s.contains(&short) && s.ends_with("1\ngateway"), "{s}");
    // Out over IPv6 with the host's address (masquerade): the "outside"
    // has no route back to the network's subnet, only to the host.
    let dir = tempfile::tempdir().unwrap();
    let outside = Neighbour::new(&d, dir.path(), "out6", "10.56.0.2", "10.56.0.1");
    ok(outside
        .run("ip")
        .args(["-6", "addr", "add", "fd00:99::2/64", "dev", "eth0", "nodad"]));
    ok(d.on_host("ip").args(["-6", "addr", "add", "fd00:99::1/64", "dev", "out6", "nodad"]));
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("who"), "outside").unwrap();
    let _httpd = Server(
        outside
            .run("busybox")
            .args(["httpd", "-f", "-p", "[fd00:99::2]:8080", "-h"])
            .arg(&www)
            .spawn()
            .unwrap(),
    );
    assert!(!ok(outside.run("ip").args(["-6", "route"])).contains("fd00:b"));
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "dual",
            "busybox",
            "sh",
            "-c",
            "timeout 5 wget -qO- http://[fd00:99::2]:8080/who",
        ],
    );
    assert_eq!(out(&o), "outside", "IPv6 traffic leaves masqueraded: {}", text(&o));
    // A network without --ipv6 gets no IPv6 addresses, and an IPv6 subnet
    // without it is refused.
    let o = docker(&d, &["network", "create", "--subnet", "fd00:c::/64", "nov6"]);
    assert!(!o.status.success() && text(&o).contains("--ipv6"), "{}", text(&o));
    ok(d.docker().args(["rm", "-f", "web6"]));
    ok(d.docker().args(["network", "rm", "dual"]));
}
