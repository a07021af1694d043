//! berth's rtnetlink (net/src/netlink.rs) against the kernel, inside
//! network namespaces of the test's own (never the machine's interfaces):
//! a bridge in a test "host" namespace, a veth pair with its peer moved
//! into a "container" namespace, addresses, MAC, MTU, a default route,
//! traffic across, and removal.

use std::process::Command;

use berth_net::netlink::Netlink;
use berth_net::netns;
use berth_tests::{ok, require_root, text};

/// Namespaces pinned in a temporary directory, released when dropped
/// (the directory goes after them).
struct Namespaces {
    _dir: tempfile::TempDir,
    pins: Vec<std::path::PathBuf>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for p in &self.pins {
            let _ = netns::remove(p);
        }
    }
}

fn inside(ns: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net={}", ns.display())).args(args);
    c
}

#[test]
fn bridge_and_veth_into_a_namespace_carry_traffic() {
    if !require_root("bridge_and_veth_into_a_namespace_carry_traffic") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (host, ctr) = (dir.path().join("host"), dir.path().join("ctr"));
    netns::create(&host).unwrap();
    netns::create(&ctr).unwrap();
    let _guard = Namespaces {
        _dir: dir,
        pins: vec![host.clone(), ctr.clone()],
    };

    let mut h = Netlink::in_namespace(&host).unwrap();
    h.add_bridge("br-test", Some(1400)).unwrap();
    let e = h.add_bridge("br-test", None).unwrap_err();
    assert!(
        e.to_string().contains("create bridge br-test") && e.to_string().contains("exists"),
        "{e}"
    );
    h.set_link("br-test", None, None, true).unwrap();
    h.add_address("br-test", "10.200.0.1".parse().unwrap(), 24).unwrap();
    let ctr_fd = std::fs::File::open(&ctr).unwrap();
    h.add_veth("vh-test", "eth0", Some(1400), Some(std::os::fd::AsRawFd::as_raw_fd(&ctr_fd)))
        .unwrap();
    let bridge = h.index("br-test").unwrap();
    h.set_link("vh-test", Some(bridge), None, true).unwrap();

    let mut c = Netlink::in_namespace(&ctr).unwrap();
    c.set_link("eth0", None, Some([0x02, 0x42, 0xac, 0x11, 0, 2]), true).unwrap();
    c.add_address("eth0", "10.200.0.2".parse().unwrap(), 24).unwrap();
    c.add_default_route("10.200.0.1".parse().unwrap()).unwrap();

    let link = ok(&mut inside(&ctr, &["ip", "-o", "link", "show", "eth0"]));
    assert!(
        link.contains("mtu 1400") && link.contains("02:42:ac:11:00:02") && link.contains("UP"),
        "{link}"
    );
    let route = ok(&mut inside(&ctr, &["ip", "route"]));
    assert!(route.contains("default via 10.200.0.1 dev eth0"), "{route}");
    let master = ok(&mut inside(&host, &["ip", "-o", "link", "show", "vh-test"]));
    assert!(master.contains("master br-test"), "{master}");
    let o = inside(&ctr, &["busybox", "ping", "-c", "1", "-W", "2", "10.200.0.1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "ping across the veth and bridge: {}", text(&o));
    assert!(c.index("nope0").is_err());

    h.delete_link("vh-test").unwrap();
    h.delete_link("vh-test").unwrap();
    let links = ok(&mut inside(&ctr, &["ip", "-o", "link"]));
    assert!(!links.contains("eth0"), "the peer goes with its veth: {links}");
    h.delete_link("br-test").unwrap();
    assert!(h.index("br-test").is_err());
}

#[test]
fn bridge_driver_joins_two_containers_to_one_network() {
    use berth_plugin::network::*;
    use berth_plugin::NetworkDriver;
    if !require_root("bridge_driver_joins_two_containers_to_one_network") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (host, a, b) = (dir.path().join("host"), dir.path().join("a"), dir.path().join("b"));
    for ns in [&host, &a, &b] {
        netns::create(ns).unwrap();
    }
    let home = dir.path().join("bridge");
    let _guard = Namespaces {
        _dir: dir,
        pins: vec![host.clone(), a.clone(), b.clone()],
    };
    let driver = berth_net::bridge::BridgeDriver::new(&home, Some(host.clone())).unwrap();
    let net = CreateNetworkRequest {
        network_id: "n".repeat(64),
        options: [(berth_net::bridge::MTU_OPTION.to_string(), serde_json::json!("1450"))].into(),
        ipv4_data: vec![IpamData {
            pool: "10.201.0.0/24".into(),
            gateway: "10.201.0.1/24".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    driver.create_network(&net).unwrap();
    let dup = CreateNetworkRequest {
        network_id: "m".repeat(64),
        options: [(
            berth_net::bridge::BRIDGE_NAME_OPTION.to_string(),
            serde_json::json!(format!("br-{}", "n".repeat(12))),
        )]
        .into(),
        ..net.clone()
    };
    assert!(driver.create_network(&dup).unwrap_err().to_string().contains("already used"));
    for (ep, ns, ip) in [("a", &a, "10.201.0.2/24"), ("b", &b, "10.201.0.3/24")] {
        let id = ep.repeat(64);
        let made = driver
            .create_endpoint(&CreateEndpointRequest {
                network_id: net.network_id.clone(),
                endpoint_id: id.clone(),
                interface: Some(EndpointInterface {
                    address: ip.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap();
        assert!(made.unwrap().mac_address.starts_with("02:42:0a:c9:00:"));
        let joined = driver
            .join(&JoinRequest {
                network_id: net.network_id.clone(),
                endpoint_id: id,
                sandbox_key: ns.display().to_string(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(joined.gateway, "10.201.0.1");
    }
    let link = ok(&mut inside(&a, &["ip", "-o", "link", "show", "eth0"]));
    assert!(link.contains("mtu 1450") && link.contains("02:42:0a:c9:00:02"), "{link}");
    for (from, to) in [(&a, "10.201.0.3"), (&b, "10.201.0.2"), (&a, "10.201.0.1")] {
        let o = inside(from, &["busybox", "ping", "-c", "1", "-W", "2", to]).output().unwrap();
        assert!(o.status.success(), "ping {to}: {}", text(&o));
    }
    // A driver reopened on the same home knows the network and endpoints.
    drop(driver);
    let driver = berth_net::bridge::BridgeDriver::new(&home, Some(host.clone())).unwrap();
    assert!(driver
        .delete_network(&net.network_id)
        .unwrap_err()
        .to_string()
        .contains("still on it"));
    for ep in ["a", "b"] {
        driver.leave(&net.network_id, &ep.repeat(64)).unwrap();
        driver.delete_endpoint(&net.network_id, &ep.repeat(64)).unwrap();
    }
    assert!(!ok(&mut inside(&a, &["ip", "-o", "link"])).contains("eth0"));
    // An endpoint made but never joined (a start cut short) does not hold
    // its network.
    driver
        .create_endpoint(&CreateEndpointRequest {
            network_id: net.network_id.clone(),
            endpoint_id: "c".repeat(64),
            interface: Some(EndpointInterface {
                address: "10.201.0.9/24".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
    driver.delete_network(&net.network_id).unwrap();
    let left = ok(&mut inside(&host, &["ip", "-o", "link"]));
    assert!(
        !left.contains("br-") && !left.contains("vb"),
        "nothing left in the host namespace: {left}"
    );
    assert!(matches!(
        driver.delete_network(&net.network_id),
        Err(berth_plugin::error::DriverError::NotFound { .. })
    ));
}

#[test]
fn firewall_rules_load_isolate_and_publish_in_a_namespace() {
    use berth_net::firewall::{self, NetworkRules, PortMapping};
    if !require_root("firewall_rules_load_isolate_and_publish_in_a_namespace") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (host, a, b) = (dir.path().join("host"), dir.path().join("a"), dir.path().join("b"));
    for ns in [&host, &a, &b] {
        netns::create(ns).unwrap();
    }
    let _guard = Namespaces {
        _dir: dir,
        pins: vec![host.clone(), a.clone(), b.clone()],
    };
    // Two bridges in the test host, one test container on each.
    let mut h = Netlink::in_namespace(&host).unwrap();
    for (br, gw, veth, ns, ip) in [
        ("br-a", "10.210.0.1", "vha", &a, "10.210.0.2"),
        ("br-b", "10.211.0.1", "vhb", &b, "10.211.0.2"),
    ] {
        h.add_bridge(br, None).unwrap();
        h.add_address(br, gw.parse().unwrap(), 24).unwrap();
        h.set_link(br, None, None, true).unwrap();
        let fd = std::fs::File::open(ns).unwrap();
        h.add_veth(veth, "eth0", None, Some(std::os::fd::AsRawFd::as_raw_fd(&fd))).unwrap();
        let idx = h.index(br).unwrap();
        h.set_link(veth, Some(idx), None, true).unwrap();
        let mut c = Netlink::in_namespace(ns).unwrap();
        c.set_link("eth0", None, None, true).unwrap();
        c.add_address("eth0", ip.parse().unwrap(), 24).unwrap();
        c.add_default_route(gw.parse().unwrap()).unwrap();
    }
    ok(&mut inside(&host, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]));
    let ping = |from: &std::path::Path, to: &str| {
        inside(from, &["busybox", "ping", "-c", "1", "-W", "1", to])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(ping(&a, "10.211.0.2"), "routed between the bridges before any rule");

    let nets = vec![
        NetworkRules {
            bridge: "br-a".into(),
            subnet: "10.210.0.0/24".into(),
            subnet6: None,
            internal: false,
        },
        NetworkRules {
            bridge: "br-b".into(),
            subnet: "10.211.0.0/24".into(),
            subnet6: None,
            internal: false,
        },
    ];
    // A "server" in b: busybox nc listening on 80.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let server = Killed(
        inside(&b, &["busybox", "nc", "-l", "-p", "80", "-e", "echo", "hello-from-b"])
            .spawn()
            .unwrap(),
    );
    let ports = vec![PortMapping {
        proto: "tcp".into(),
        host_ip: None,
        host_port: 8080,
        container_ip: "10.211.0.2".parse().unwrap(),
        container_port: 80,
    }];
    firewall::apply(Some(&host), &nets, &ports).unwrap();
    let table = ok(&mut inside(&host, &["nft", "list", "table", "inet", "berth"]));
    assert!(table.contains("masquerade") && table.contains(": 10.211.0.2 . 80"), "{table}");
    assert!(!ping(&a, "10.211.0.2"), "isolated: no forwarding between two berth bridges");
    // The published port, reached from a (through the host's address on br-a).
    std::thread::sleep(std::time::Duration::from_millis(200));
    let got = ok(&mut inside(&a, &["busybox", "nc", "-w", "2", "10.210.0.1", "8080"]));
    assert_eq!(got, "hello-from-b", "DNAT to the published container");
    drop(server);
    // Applying again with one network leaves only its rules; remove clears all.
    firewall::apply(Some(&host), &nets[..1], &[]).unwrap();
    let table = ok(&mut inside(&host, &["nft", "list", "table", "inet", "berth"]));
    assert!(!table.contains("br-b") && !table.contains("elements"), "{table}");
    assert!(ping(&a, "10.211.0.2"), "forwarding back once the isolation is gone");
    firewall::remove(Some(&host)).unwrap();
    firewall::remove(Some(&host)).unwrap();
    let o = inside(&host, &["nft", "list", "table", "inet", "berth"]).output().unwrap();
    assert!(!o.status.success(), "the table is gone");
}
