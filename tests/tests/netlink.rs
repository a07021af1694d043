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
