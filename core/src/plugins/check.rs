//! The conformance kit behind `berth plugin check`: drives a driver through
//! its interface's contract and reports each clause as passed or failed.
//! - volume: create (twice, idempotent), get and list agreeing, errors for
//!   missing volumes, mount giving a writable directory, mounts counted
//!   per container (data kept while one remains, removal refused while
//!   mounted), remove (and again), concurrent calls;
//! - network: create, an endpoint joined to a sandbox (a network
//!   namespace the kit makes) holding its address, leave and delete
//!   taking it away, errors for missing networks and endpoints, endpoints
//!   made and joined concurrently, delete;
//! - graph: a layer and a writable layer on it, nested get/put, exists,
//!   errors for missing layers, concurrent layers, remove;
//! - IPAM: a pool, its gateway, addresses inside it and never twice, an
//!   address given back handed out again, concurrent requests distinct,
//!   errors for missing pools, the pool given back.
//!
//! The kit works on the driver it is given; it makes its objects under
//! names of its own and removes them, pass or fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_plugin::graph::CreateRequest as LayerRequest;
use berth_plugin::network::{CreateEndpointRequest, CreateNetworkRequest, EndpointInterface, IpamData, JoinRequest};
use berth_plugin::volume::{CreateRequest, MountRequest};
use berth_plugin::{GraphDriver, IpamDriver, NetworkDriver, VolumeDriver};

/// One clause of a contract, checked.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub clause: String,
    /// Empty when the clause held; else what was seen.
    pub failure: String,
}

/// What a driver did under the kit.
#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

type Checked = std::result::Result<(), String>;

impl Report {
    fn check(&mut self, clause: &str, f: impl FnOnce() -> Checked) {
        let failure = f().err().unwrap_or_default();
        self.outcomes.push(Outcome {
            clause: clause.to_string(),
            failure,
        });
    }

    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.failure.is_empty()).count()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for o in &self.outcomes {
            if o.failure.is_empty() {
                writeln!(f, "  PASS  {}", o.clause)?;
            } else {
                writeln!(f, "  FAIL  {}: {}", o.clause, o.failure)?;
            }
        }
        write!(f, "{} passed, {} failed", self.outcomes.len() - self.failed(), self.failed())
    }
}

/// Runs `f(0)` to `f(n - 1)` on `n` threads at once: the first failure.
fn in_parallel(n: u32, f: impl Fn(u32) -> Checked + Sync) -> Checked {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..n).map(|i| s.spawn(move || f(i))).collect();
        // The scope waits for every thread, failed or not.
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|_| Err("a caller thread panicked".into())))
    })
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Checked {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// A name of the kit's own: `check-PID-WHAT`.
fn own(what: &str) -> String {
    format!("check-{}-{what}", std::process::id())
}

fn mount_req(name: &str, id: &str) -> MountRequest {
    MountRequest {
        name: name.into(),
        id: id.into(),
    }
}

/// The volume contract, with `opts` given to every create.
pub fn volume(d: &dyn VolumeDriver, opts: &BTreeMap<String, String>) -> Report {
    let mut r = Report::default();
    let v = own("vol");
    let create = |name: &str| {
        d.create(&CreateRequest {
            name: name.into(),
            opts: opts.clone(),
        })
    };
    r.check("create", || create(&v).map_err(|e| e.to_string()));
    r.check("create again with the same options succeeds", || {
        create(&v).map_err(|e| e.to_string())
    });
    r.check("get and list agree", || {
        let got = d.get(&v).map_err(|e| format!("get: {e}"))?;
        ensure(got.name == v, || format!("get {v} answered {}", got.name))?;
        let listed = d.list().map_err(|e| format!("list: {e}"))?;
        ensure(listed.iter().any(|l| l.name == v), || format!("list lacks {v}"))?;
        for l in &listed {
            d.get(&l.name).map_err(|e| format!("list has {} but get fails: {e}", l.name))?;
        }
        Ok(())
    });
    r.check("missing volumes are errors (get, path, mount, remove)", || {
        let m = own("missing");
        ensure(d.get(&m).is_err(), || "get succeeded".into())?;
        ensure(d.path(&m).is_err(), || "path succeeded".into())?;
        ensure(d.mount(&mount_req(&m, "c1")).is_err(), || "mount succeeded".into())?;
        ensure(d.remove(&m).is_err(), || "remove succeeded".into())
    });
    let mut at = PathBuf::new();
    r.check("mount gives a writable directory", || {
        at = d.mount(&mount_req(&v, "c1")).map_err(|e| e.to_string())?;
        std::fs::write(at.join("check"), b"kept").map_err(|e| format!("write in {}: {e}", at.display()))?;
        let p = d.path(&v).map_err(|e| format!("path: {e}"))?;
        ensure(p == at, || format!("path answers {} but mount {}", p.display(), at.display()))
    });
    r.check("mounts are counted per container", || {
        let again = d.mount(&mount_req(&v, "c2")).map_err(|e| format!("second mount: {e}"))?;
        ensure(again == at, || {
            format!("second mount at {}, first at {}", again.display(), at.display())
        })?;
        d.unmount(&mount_req(&v, "c1")).map_err(|e| format!("unmount c1: {e}"))?;
        let kept = std::fs::read(at.join("check")).map_err(|e| format!("after c1 unmounted, c2's mount lost the data: {e}"))?;
        ensure(kept == b"kept", || "data changed".into())?;
        ensure(d.remove(&v).is_err(), || "remove succeeded while c2 has it mounted".into())?;
        d.unmount(&mount_req(&v, "c2")).map_err(|e| format!("unmount c2: {e}"))
    });
    r.check("remove", || {
        d.remove(&v).map_err(|e| e.to_string())?;
        ensure(d.get(&v).is_err(), || "get still finds it".into())?;
        let listed = d.list().map_err(|e| format!("list: {e}"))?;
        ensure(!listed.iter().any(|l| l.name == v), || "list still has it".into())
    });
    r.check("remove again leaves it removed", || {
        let _ = d.remove(&v);
        ensure(d.get(&v).is_err(), || "the volume came back".into())
    });
    r.check("concurrent calls", || concurrent_volumes(d, opts));
    r
}

fn concurrent_volumes(d: &dyn VolumeDriver, opts: &BTreeMap<String, String>) -> Checked {
    let shared = own("shared");
    d.create(&CreateRequest {
        name: shared.clone(),
        opts: opts.clone(),
    })
    .map_err(|e| format!("create {shared}: {e}"))?;
    let shared = shared.as_str();
    let results = in_parallel(6, |i| -> Checked {
        let mine = own(&format!("par{i}"));
        let id = format!("c{i}");
        d.create(&CreateRequest {
            name: mine.clone(),
            opts: opts.clone(),
        })
        .map_err(|e| format!("create {mine}: {e}"))?;
        let at = d.mount(&mount_req(&mine, &id)).map_err(|e| format!("mount {mine}: {e}"))?;
        std::fs::write(at.join("n"), i.to_string()).map_err(|e| format!("write in {mine}: {e}"))?;
        let s_at = d.mount(&mount_req(shared, &id)).map_err(|e| format!("mount {shared}: {e}"))?;
        std::fs::write(s_at.join(format!("from{i}")), b"x").map_err(|e| format!("write in {shared}: {e}"))?;
        d.unmount(&mount_req(&mine, &id)).map_err(|e| format!("unmount {mine}: {e}"))?;
        d.unmount(&mount_req(shared, &id)).map_err(|e| format!("unmount {shared}: {e}"))?;
        d.remove(&mine).map_err(|e| format!("remove {mine}: {e}"))
    });
    let removed = d.remove(shared).map_err(|e| format!("remove {shared} after every unmount: {e}"));
    results?;
    removed
}

/// The network contract. `work` holds the kit's sandboxes; `attaches` says
/// whether the driver gives containers an interface (`null` and `host`
/// do not).
pub fn network(d: &dyn NetworkDriver, opts: &BTreeMap<String, String>, work: &Path, attaches: bool) -> Report {
    let mut r = Report::default();
    let net = own("net");
    let subnet_third = 200 + (std::process::id() % 50);
    let address = |host: u32| format!("10.231.{subnet_third}.{host}/24");
    let gateway = format!("10.231.{subnet_third}.1");
    let create = CreateNetworkRequest {
        network_id: net.clone(),
        options: opts.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect(),
        ipv4_data: vec![IpamData {
            address_space: "LocalDefault".into(),
            pool: format!("10.231.{subnet_third}.0/24"),
            gateway: format!("{gateway}/24"),
            aux_addresses: BTreeMap::new(),
        }],
        ipv6_data: Vec::new(),
    };
    let made = d.create_network(&create);
    r.check("create network", || made.as_ref().map(drop).map_err(|e| e.to_string()));
    if made.is_err() {
        return r;
    }
    let sandbox = |name: &str| -> std::result::Result<PathBuf, String> {
        let p = work.join(name);
        berth_net::netns::create(&p).map_err(|e| format!("make a sandbox: {e}"))?;
        Ok(p)
    };
    let attach = |ep: &str, host: u32, sb: &Path| -> Checked {
        d.create_endpoint(&CreateEndpointRequest {
            network_id: net.clone(),
            endpoint_id: ep.into(),
            interface: Some(EndpointInterface {
                address: address(host),
                ..Default::default()
            }),
            options: BTreeMap::new(),
        })
        .map_err(|e| format!("create endpoint: {e}"))?;
        let joined = d
            .join(&JoinRequest {
                network_id: net.clone(),
                endpoint_id: ep.into(),
                sandbox_key: sb.display().to_string(),
                options: BTreeMap::from([
                    (berth_net::bridge::IFNAME_OPTION.to_string(), serde_json::json!("eth0")),
                    (berth_net::bridge::DEFAULT_ROUTE_OPTION.to_string(), serde_json::json!(true)),
                ]),
            })
            .map_err(|e| format!("join: {e}"))?;
        if let Some(i) = joined.interface_name.as_ref().filter(|i| !i.src_name.is_empty()) {
            // As the engine does: the driver's link moved in and set up.
            let address = address(host);
            let ip: std::net::IpAddr = address
                .split('/')
                .next()
                .unwrap_or("")
                .parse()
                .map_err(|e| format!("{address}: {e}"))?;
            let adoption = berth_net::endpoint::Adoption {
                src: &i.src_name,
                ifname: "eth0",
                mac: &berth_net::endpoint::mac_of(ip),
                address: &address,
                gateway: joined.gateway.parse().ok(),
                routes: &joined.static_routes,
                ..Default::default()
            };
            berth_net::endpoint::adopt(sb, &adoption).map_err(|e| format!("join answered link {}: {e}", i.src_name))?;
        }
        let has = sandbox_addresses(sb)?;
        let want = address(host);
        if attaches {
            ensure(has.contains(&want), || format!("the sandbox has {has:?}, not {want}"))
        } else {
            ensure(has.is_empty(), || format!("a driver attaching nothing gave the sandbox {has:?}"))
        }
    };
    let detach = |ep: &str, sb: &Path| -> Checked {
        d.leave(&net, ep).map_err(|e| format!("leave: {e}"))?;
        d.delete_endpoint(&net, ep).map_err(|e| format!("delete endpoint: {e}"))?;
        let has = sandbox_addresses(sb)?;
        ensure(has.is_empty(), || format!("after leave the sandbox still has {has:?}"))
    };
    r.check("an endpoint joined to a sandbox has its address there", || {
        let sb = sandbox("sandbox0")?;
        attach("ep0", 2, &sb)
    });
    r.check("leave and delete take the endpoint away", || detach("ep0", &work.join("sandbox0")));
    r.check("missing networks and endpoints are errors", || {
        let missing = CreateEndpointRequest {
            network_id: own("missing"),
            endpoint_id: "ep-missing".into(),
            interface: Some(EndpointInterface {
                address: address(9),
                ..Default::default()
            }),
            options: BTreeMap::new(),
        };
        if attaches {
            ensure(d.create_endpoint(&missing).is_err(), || {
                "create endpoint on a missing network succeeded".into()
            })?;
            let join = JoinRequest {
                network_id: net.clone(),
                endpoint_id: "ep-never-made".into(),
                sandbox_key: work.join("sandbox0").display().to_string(),
                options: BTreeMap::new(),
            };
            ensure(d.join(&join).is_err(), || "join of a missing endpoint succeeded".into())?;
        }
        Ok(())
    });
    r.check("endpoints made and joined concurrently", || {
        in_parallel(4, |i| -> Checked {
            let sb = sandbox(&format!("sandbox{}", i + 1))?;
            let ep = format!("ep{}", i + 1);
            attach(&ep, 10 + i, &sb)?;
            detach(&ep, &sb)
        })
    });
    r.check("delete network", || d.delete_network(&net).map_err(|e| e.to_string()));
    for i in 0..5 {
        let _ = berth_net::netns::remove(&work.join(format!("sandbox{i}")));
    }
    r
}

/// The IPv4 addresses (`ADDR/PREFIX`) of the sandbox's links other than lo.
fn sandbox_addresses(sb: &Path) -> std::result::Result<Vec<String>, String> {
    let o = std::process::Command::new("nsenter")
        .arg(format!("--net={}", sb.display()))
        .args(["ip", "-o", "-4", "addr", "show"])
        .output()
        .map_err(|e| format!("run nsenter ip: {e}"))?;
    if !o.status.success() {
        return Err(format!("ip addr in the sandbox: {}", String::from_utf8_lossy(&o.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(1) != Some("lo"))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect())
}

/// The graph-driver contract.
pub fn graph(d: &dyn GraphDriver) -> Report {
    let mut r = Report::default();
    let (base, top) = (own("base"), own("top"));
    let layer = |id: &str, parent: &str| LayerRequest {
        id: id.into(),
        parent: parent.into(),
        mount_label: String::new(),
    };
    r.check("create a layer and a writable layer on it", || {
        d.create(&layer(&base, "")).map_err(|e| format!("create: {e}"))?;
        d.create_read_write(&layer(&top, &base))
            .map_err(|e| format!("create read-write: {e}"))?;
        ensure(d.exists(&base) && d.exists(&top), || "exists does not see them".into())
    });
    r.check("get nests and pairs with put", || {
        let a = d.get(&top, "").map_err(|e| format!("get: {e}"))?;
        let b = d.get(&top, "").map_err(|e| format!("second get: {e}"))?;
        ensure(a == b, || format!("two gets gave {} and {}", a.display(), b.display()))?;
        std::fs::write(a.join("check"), b"x").map_err(|e| format!("write in {}: {e}", a.display()))?;
        d.put(&top).map_err(|e| format!("put: {e}"))?;
        ensure(a.join("check").exists(), || "the first put undid the second get".into())?;
        d.put(&top).map_err(|e| format!("second put: {e}"))
    });
    r.check("missing layers are errors", || {
        let m = own("missing");
        ensure(!d.exists(&m), || "exists says yes".into())?;
        ensure(d.get(&m, "").is_err(), || "get succeeded".into())
    });
    r.check("concurrent writable layers", || {
        in_parallel(4, |i| -> Checked {
            let id = own(&format!("rw{i}"));
            d.create_read_write(&layer(&id, &base)).map_err(|e| format!("create {id}: {e}"))?;
            let at = d.get(&id, "").map_err(|e| format!("get {id}: {e}"))?;
            std::fs::write(at.join("n"), i.to_string()).map_err(|e| format!("write in {id}: {e}"))?;
            d.put(&id).map_err(|e| format!("put {id}: {e}"))?;
            d.remove(&id).map_err(|e| format!("remove {id}: {e}"))
        })
    });
    r.check("remove", || {
        d.remove(&top).map_err(|e| format!("remove {top}: {e}"))?;
        d.remove(&base).map_err(|e| format!("remove {base}: {e}"))?;
        ensure(!d.exists(&top) && !d.exists(&base), || "exists still sees them".into())
    });
    r
}

/// The IPAM contract, on a pool of the driver's choosing.
pub fn ipam(d: &dyn IpamDriver) -> Report {
    use berth_plugin::ipam::{AddressRequest, PoolRequest};
    let mut r = Report::default();
    let pool = d.request_pool(&PoolRequest::default());
    r.check("a pool", || {
        let p = pool.as_ref().map_err(|e| e.to_string())?;
        ensure(!p.pool_id.is_empty() && p.pool.contains('/'), || format!("answered {p:?}"))
    });
    let Ok(pool) = pool else { return r };
    let subnet = berth_net::ipam::Subnet::parse(&pool.pool).ok();
    let ask = |address: &str, gateway: bool| {
        let options = if gateway {
            BTreeMap::from([("RequestAddressType".to_string(), "com.docker.network.gateway".to_string())])
        } else {
            BTreeMap::new()
        };
        d.request_address(&AddressRequest {
            pool_id: pool.pool_id.clone(),
            address: address.into(),
            options,
        })
        .map(|a| a.address.split('/').next().unwrap_or_default().to_string())
    };
    let inside = |a: &str| -> Checked {
        let ip: std::net::IpAddr = a.parse().map_err(|_| format!("{a:?} is not an address"))?;
        ensure(subnet.is_some_and(|s| s.contains(ip)), || format!("{a} is not in {}", pool.pool))
    };
    r.check("a gateway inside the pool", || inside(&ask("", true).map_err(|e| e.to_string())?));
    let mut first = String::new();
    r.check("addresses inside the pool, never twice", || {
        first = ask("", false).map_err(|e| e.to_string())?;
        inside(&first)?;
        let second = ask("", false).map_err(|e| e.to_string())?;
        inside(&second)?;
        ensure(first != second, || format!("{first} handed out twice"))?;
        ensure(ask(&first, false).is_err(), || format!("{first} handed out again on request"))?;
        d.release_address(&pool.pool_id, &second)
            .map_err(|e| format!("release {second}: {e}"))
    });
    r.check("an address given back is handed out again", || {
        d.release_address(&pool.pool_id, &first)
            .map_err(|e| format!("release {first}: {e}"))?;
        let again = ask(&first, false).map_err(|e| format!("ask for {first} after its release: {e}"))?;
        ensure(again == first, || format!("asked for {first}, got {again}"))?;
        d.release_address(&pool.pool_id, &first)
            .map_err(|e| format!("release {first}: {e}"))
    });
    r.check("concurrent requests get distinct addresses", || {
        let got = std::sync::Mutex::new(Vec::new());
        in_parallel(6, |_| {
            let a = ask("", false).map_err(|e| e.to_string())?;
            got.lock().map_err(|_| "poisoned".to_string())?.push(a);
            Ok(())
        })?;
        let mut all = got.into_inner().map_err(|_| "poisoned".to_string())?;
        let n = all.len();
        all.sort();
        all.dedup();
        ensure(all.len() == n, || format!("duplicates among {n} addresses"))?;
        all.iter()
            .try_for_each(|a| d.release_address(&pool.pool_id, a).map_err(|e| format!("release {a}: {e}")))
    });
    r.check("missing pools are errors", || {
        let missing = AddressRequest {
            pool_id: own("missing"),
            address: String::new(),
            options: BTreeMap::new(),
        };
        ensure(d.request_address(&missing).is_err(), || "an address from a missing pool".into())
    });
    r.check("the pool given back", || d.release_pool(&pool.pool_id).map_err(|e| e.to_string()));
    r
}

/// A driver to check, of whichever interfaces it has.
pub struct Target {
    pub description: String,
    pub volume: Option<Arc<dyn VolumeDriver>>,
    pub network: Option<Arc<dyn NetworkDriver>>,
    pub graph: Option<Arc<dyn GraphDriver>>,
    pub ipam: Option<Arc<dyn IpamDriver>>,
    /// Whether its network driver gives containers an interface.
    pub attaches: bool,
}

impl Target {
    /// Finds `target`: a shared object (`*.so`), a Docker plugin's socket
    /// or spec file, a built-in driver's name, or a Docker plugin's name
    /// in the plugin directories. Built-in drivers and loaded plugins keep
    /// their state under `home`.
    /// With `cluster`, the built-in overlay driver shares its networks
    /// through that store.
    pub fn resolve(
        target: &str,
        settings: &super::Settings,
        cluster: Option<&berth_net::overlay::Cluster>,
    ) -> std::result::Result<Target, String> {
        use berth_plugin::http::Address;
        use berth_plugin::Interface;
        let path = Path::new(target);
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let empty = |description: String| Target {
            description,
            volume: None,
            network: None,
            graph: None,
            ipam: None,
            attaches: true,
        };
        let from_remote = |description: String, remote: Arc<berth_plugin::protocol::Remote>, interfaces: &[String]| {
            let has = |i: Interface| interfaces.iter().any(|n| n == i.protocol_name());
            let mut t = empty(description);
            if has(Interface::VolumeDriver) {
                t.volume = Some(remote.clone());
            }
            if has(Interface::NetworkDriver) {
                t.network = Some(remote.clone());
            }
            if has(Interface::GraphDriver) {
                t.graph = Some(remote.clone());
            }
            if has(Interface::IpamDriver) {
                t.ipam = Some(remote.clone());
            }
            t
        };
        if ext == "so" {
            let (so, remote) = super::load_shared_object(path, settings)?;
            return Ok(from_remote(format!("{} (so:{})", so.name, path.display()), remote, &so.interfaces));
        }
        let http = |name: &str, address: Address| {
            let (remote, interfaces) = super::activate_http(name, address.clone(), settings.timeout)?;
            Ok(from_remote(format!("{name} (http:{address})"), remote, &interfaces))
        };
        if path.exists() && matches!(ext, "sock" | "spec" | "json") {
            let address = if ext == "sock" {
                Address::Unix(path.to_path_buf())
            } else {
                super::read_spec(path)?
            };
            return http(&super::stem(path), address);
        }
        let builtin = crate::drivers::builtin_registry(&settings.home, cluster).map_err(|e| format!("set up the built-in drivers: {e}"))?;
        let mut t = empty(format!("{target} (builtin)"));
        t.volume = builtin.volume(target).ok();
        t.network = builtin.network(target).ok();
        t.graph = builtin.graph(target).ok();
        t.attaches = !matches!(target, berth_net::none::NAME | berth_net::host::NAME);
        if t.volume.is_some() || t.network.is_some() || t.graph.is_some() {
            return Ok(t);
        }
        let plugins = super::Plugins::new(settings.clone());
        match plugins.locate(target) {
            Some(p) if p.extension().is_some_and(|e| e == "sock") => http(target, Address::Unix(p)),
            Some(p) => http(target, super::read_spec(&p)?),
            None => Err(format!(
                "no plugin {target:?}: not a .so, .sock, .spec or .json file, not a built-in driver, and not found in the plugin directories"
            )),
        }
    }

    /// Runs every contract the target has: (interface, report) pairs.
    pub fn check(&self, opts: &BTreeMap<String, String>, work: &Path) -> Vec<(&'static str, Report)> {
        let mut out = Vec::new();
        if let Some(v) = &self.volume {
            out.push(("VolumeDriver", volume(v.as_ref(), opts)));
        }
        if let Some(n) = &self.network {
            out.push(("NetworkDriver", network(n.as_ref(), opts, work, self.attaches)));
        }
        if let Some(g) = &self.graph {
            out.push(("GraphDriver", graph(g.as_ref())));
        }
        if let Some(i) = &self.ipam {
            out.push(("IpamDriver", ipam(i.as_ref())));
        }
        out
    }
}

/// Whether `target` runs in this process (a shared object or a built-in
/// driver), so that namespaces of the kit's own hold what it makes; a
/// plugin of its own process works in the namespaces it runs in.
pub fn runs_in_process(target: &str) -> bool {
    target.ends_with(".so")
        || [
            berth_fs::volume::local::NAME,
            berth_fs::graph::overlay::NAME,
            berth_fs::graph::overlay::FUSE_NAME,
            berth_fs::graph::vfs::NAME,
            berth_net::bridge::NAME,
            berth_net::macvlan::NAME,
            berth_net::overlay::NAME,
            berth_net::none::NAME,
            berth_net::host::NAME,
        ]
        .contains(&target)
}

/// Moves this process (which must have no other thread yet) into network
/// and mount namespaces of its own, so the drivers' links, rules and
/// mounts stay off the host and go when it exits. Mounts of the host still
/// show (the mount namespace is a slave of the host's).
pub fn enter_own_namespaces() -> std::result::Result<(), String> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare the network and mount namespaces: {e}"))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
        .map_err(|e| format!("make / a slave mount: {e}"))?;
    berth_net::netlink::Netlink::new()
        .and_then(|mut n| n.set_link("lo", None, None, true))
        .map_err(|e| format!("bring lo up: {e}"))
}
