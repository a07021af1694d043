//! Control groups for containers, on cgroup v1 (including hybrid hosts) and
//! cgroup v2.
//!
//! Owns: finding the cgroup filesystems ([`mountinfo`]), resolving a
//! container's `cgroupsPath`, creating and removing its cgroup directories,
//! applying the OCI `linux.resources` (memory, cpu, cpuset, pids, hugetlb,
//! blockIO, network, rdma, unified and devices), moving processes in, listing
//! them, freezing and thawing, and reading OOM kills. On v2 the device
//! controller is an eBPF program that [`devices`] assembles and attaches
//! itself.
//!
//! Does not own: systemd's cgroup driver (berth writes cgroupfs directly, so
//! `slice:prefix:name` paths are refused), statistics beyond OOM kills, and
//! cgroup namespaces (the runtime unshares those).
//!
//! # Paths
//!
//! A `cgroupsPath` is cleaned lexically (`.` dropped, `..` cannot climb above
//! the root) and then taken from the root of every hierarchy, whether it is
//! written absolute or relative. runc nests relative paths under its own
//! cgroup instead; berth does not, so that one path names the cgroup on every
//! v1 hierarchy (the runtime may sit in different cgroups on each) and can be
//! stored in the state file as is. Without a `cgroupsPath` a container lives
//! at `/berth/<id>` ([`DEFAULT_PARENT`]).

mod cgroupfs;
mod devices;
mod limits;
pub(crate) mod mountinfo;
#[cfg(test)]
mod testing;
mod v1;
mod v2;

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

pub use devices::default_device_rules;

/// Where containers without a `cgroupsPath` get their cgroup:
/// `/berth/<container id>`.
pub const DEFAULT_PARENT: &str = "/berth";

/// Where the host mounts its cgroup filesystems (the unified hierarchy itself
/// on a pure v2 host).
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Why a cgroup operation failed. Every variant names the file, directory or
/// resource it concerns.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A filesystem operation on a cgroup file or directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Writing a value to a cgroup control file failed.
    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    /// A control file held something that is not what the kernel writes.
    #[error("parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },
    /// The `cgroupsPath` (or the path from a state file) cannot be used.
    #[error("cgroup path {path:?}: {reason}")]
    InvalidPath { path: PathBuf, reason: &'static str },
    /// A value in `linux.resources` is out of range or inconsistent.
    #[error("{resource}: {reason}")]
    InvalidResource { resource: &'static str, reason: String },
    /// The host does not offer the controller a resource needs.
    #[error("{resource} needs the {controller} cgroup controller, which is not available (checked {path})")]
    MissingController {
        resource: &'static str,
        controller: String,
        path: PathBuf,
    },
    /// The resource has no equivalent on this cgroup version.
    #[error("{resource} is not supported on cgroup {version}")]
    Unsupported { resource: &'static str, version: CgroupVersion },
    /// A swap limit was asked for but the kernel does not account swap.
    #[error("memory swap limit {swap} needs swap accounting, which this kernel lacks ({path} does not exist)")]
    SwapUnsupported { swap: i64, path: PathBuf },
    /// Freezing or thawing did not settle in time.
    #[error("{op} {path}: still {state:?} after {waited:?}")]
    Timeout {
        op: &'static str,
        path: PathBuf,
        state: String,
        waited: Duration,
    },
    /// Loading or attaching the v2 device program failed.
    #[error("bpf {op} for {path}: {source}{}", verifier_log(log))]
    Bpf {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        log: String,
    },
    /// No cgroup filesystem of the needed kind is mounted.
    #[error("no {what} is mounted (checked {path})")]
    NoMount { what: &'static str, path: PathBuf },
}

fn verifier_log(log: &str) -> String {
    if log.trim().is_empty() {
        String::new()
    } else {
        format!("; verifier log:\n{}", log.trim_end())
    }
}

/// The cgroup version the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Controllers on v1 hierarchies, including hybrid hosts where an empty
    /// cgroup2 sits beside them.
    V1,
    /// One unified cgroup2 hierarchy at `/sys/fs/cgroup`.
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        })
    }
}

/// The host's cgroup version: v2 when `/sys/fs/cgroup` is itself a cgroup2
/// filesystem, v1 otherwise (hybrid hosts included, and hosts where the
/// statfs fails: v1 operations then report the missing mounts).
pub fn version() -> CgroupVersion {
    match nix::sys::statfs::statfs(CGROUP_ROOT) {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => CgroupVersion::V2,
        _ => CgroupVersion::V1,
    }
}

/// A container's cgroup, on whichever version the host runs.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    V1(v1::V1Cgroup),
    V2(v2::V2Cgroup),
}

impl Cgroup {
    /// Creates the cgroup of container `id` and applies `resources`.
    ///
    /// `cgroups_path` is resolved as the module docs describe (`None`:
    /// `/berth/<id>`). On v1 a directory is made on every mounted hierarchy,
    /// named ones such as `name=systemd` included, and cpuset directories get
    /// their parent's `cpuset.cpus`/`cpuset.mems`; on v2 the one directory is
    /// made and the available controllers enabled in its ancestors. Device
    /// rules are always applied: deny everything, then the spec's rules, then
    /// [`default_device_rules`]'s allowed devices (see there for why in that
    /// order). On failure, every directory this call made is removed again.
    pub fn create(cgroups_path: Option<&Path>, id: &str, resources: Option<&LinuxResources>) -> Result<Cgroup, CgroupError> {
        let path = resolve_path(cgroups_path, id)?;
        // A cgroup with processes belongs to someone else: refuse before
        // writing any limit into it.
        if Cgroup::open(&path).and_then(|c| c.pids()).is_ok_and(|p| !p.is_empty()) {
            return Err(CgroupError::InvalidPath {
                path,
                reason: "already holds processes: another container uses this cgroupsPath",
            });
        }
        let backend = match version() {
            CgroupVersion::V1 => Backend::V1(v1::V1Cgroup::create(mountinfo::read()?.v1, &path, resources)?),
            CgroupVersion::V2 => Backend::V2(v2::V2Cgroup::create(Path::new(CGROUP_ROOT), &path, resources)?),
        };
        Ok(Cgroup { path, backend })
    }

    /// Re-opens the cgroup at `path`, as [`Cgroup::path`] returned it when
    /// the container was created. The directories need not exist: operations
    /// on a vanished cgroup fail with not-found errors, except
    /// [`Cgroup::destroy`], which succeeds.
    pub fn open(path: &Path) -> Result<Cgroup, CgroupError> {
        if !path.is_absolute() || resolve_path(Some(path), "")?.as_os_str() != path.as_os_str() {
            return Err(CgroupError::InvalidPath {
                path: path.to_path_buf(),
                reason: "a stored cgroup path must be absolute and clean",
            });
        }
        let backend = match version() {
            CgroupVersion::V1 => Backend::V1(v1::V1Cgroup::at(mountinfo::read()?.v1, path)?),
            CgroupVersion::V2 => Backend::V2(v2::V2Cgroup::at(Path::new(CGROUP_ROOT), path)),
        };
        Ok(Cgroup {
            path: path.to_path_buf(),
            backend,
        })
    }

    /// The resolved cgroup path (for example `/berth/abc`), to store in the
    /// state file and pass to [`Cgroup::open`] later.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The host's cgroup version this cgroup lives on.
    pub fn version(&self) -> CgroupVersion {
        match self.backend {
            Backend::V1(_) => CgroupVersion::V1,
            Backend::V2(_) => CgroupVersion::V2,
        }
    }

    /// Moves process `pid` into the cgroup (on v1: into every hierarchy).
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        match &self.backend {
            Backend::V1(cg) => cg.add_process(pid),
            Backend::V2(cg) => cg.add_process(pid),
        }
    }

    /// The processes in the cgroup and its descendants.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        match &self.backend {
            Backend::V1(cg) => cg.pids(),
            Backend::V2(cg) => cg.pids(),
        }
    }

    /// Freezes every process in the cgroup and waits until all are frozen.
    /// If they do not freeze in time, thaws them again and fails.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match &self.backend {
            Backend::V1(cg) => cg.freeze(),
            Backend::V2(cg) => cg.freeze(),
        }
    }

    /// Thaws the cgroup and waits until the kernel reports it thawed.
    /// Changes the memory, CPU and pids limits in place (`update`).
    pub fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        match &self.backend {
            Backend::V1(cg) => v1::update_resources(cg, resources),
            Backend::V2(cg) => v2::update_resources(cg, resources),
        }
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        match &self.backend {
            Backend::V1(cg) => cg.thaw(),
            Backend::V2(cg) => cg.thaw(),
        }
    }

    /// Whether the cgroup is completely frozen (a freeze still in progress
    /// reads as not frozen).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match &self.backend {
            Backend::V1(cg) => cg.is_frozen(),
            Backend::V2(cg) => cg.is_frozen(),
        }
    }

    /// Removes the cgroup and its descendants, deepest first, on every
    /// hierarchy. Retries briefly while the last processes exit; directories
    /// that are already gone are fine, so this is idempotent.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        match &self.backend {
            Backend::V1(cg) => cg.destroy(),
            Backend::V2(cg) => cg.destroy(),
        }
    }

    /// How many processes the OOM killer killed in this cgroup (v1
    /// `memory.oom_control`, v2 `memory.events`); `None` when the kernel
    /// does not say (no memory controller, old kernel, cgroup gone).
    pub fn oom_kills(&self) -> Option<u64> {
        match &self.backend {
            Backend::V1(cg) => cg.oom_kills(),
            Backend::V2(cg) => cg.oom_kills(),
        }
    }

    /// The cgroup's directories on the host, one per hierarchy.
    #[cfg(test)]
    fn directories(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::V1(cg) => cg.directories(),
            Backend::V2(cg) => vec![cg.directory().to_path_buf()],
        }
    }
}

/// Resolves a `cgroupsPath` (or, without one, the default path of container
/// `id`) to a clean absolute path below the hierarchy roots.
fn resolve_path(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf, CgroupError> {
    let given = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => {
            if id.is_empty() || id == "." || id == ".." || id.contains('/') {
                return Err(CgroupError::InvalidPath {
                    path: Path::new(DEFAULT_PARENT).join(id),
                    reason: "the container id cannot name a cgroup directory",
                });
            }
            Path::new(DEFAULT_PARENT).join(id)
        }
    };
    if !given.is_absolute() && is_systemd_style(&given) {
        return Err(CgroupError::InvalidPath {
            path: given,
            reason: "slice:prefix:name paths need the systemd cgroup driver, which berth does not have",
        });
    }
    let mut clean = PathBuf::from("/");
    for component in given.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if clean == Path::new("/") {
        return Err(CgroupError::InvalidPath {
            path: given,
            reason: "resolves to the root cgroup, which a container cannot own",
        });
    }
    Ok(clean)
}

/// `system.slice:docker:abc`: systemd's driver syntax (two colons, no slash).
fn is_systemd_style(path: &Path) -> bool {
    let text = path.to_string_lossy();
    !text.contains('/') && text.matches(':').count() == 2
}

/// `path` (absolute, clean) relative to a hierarchy's root.
fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// The resolved path of `dir` inside a hierarchy mounted at `mount_point`.
fn dir_in(mount_point: &Path, path: &Path) -> PathBuf {
    mount_point.join(relative(path))
}

#[cfg(test)]
mod tests {
    use super::testing::{require_root, unique_name, Child, Cleanup};
    use super::*;
    use oci_spec::runtime::{LinuxMemory, LinuxPids};

    #[test]
    fn default_path_is_under_berth() {
        assert_eq!(resolve_path(None, "abc").unwrap(), Path::new("/berth/abc"));
        assert_eq!(resolve_path(Some(Path::new("")), "abc").unwrap(), Path::new("/berth/abc"));
    }

    #[test]
    fn absolute_and_relative_paths_start_at_the_root() {
        let r = |p: &str| resolve_path(Some(Path::new(p)), "id").unwrap();
        assert_eq!(r("/a/b"), Path::new("/a/b"));
        assert_eq!(r("a/b"), Path::new("/a/b"));
        assert_eq!(r("/a/./b/"), Path::new("/a/b"));
        assert_eq!(r("/a/../b"), Path::new("/b"));
        assert_eq!(r("../../a"), Path::new("/a"), "cannot climb above the root");
        assert_eq!(r("/kubepods/pod1:2/c"), Path::new("/kubepods/pod1:2/c"));
    }

    #[test]
    fn unusable_paths_are_refused() {
        for bad in ["/", "..", "/a/..", "system.slice:docker:abc"] {
            let err = resolve_path(Some(Path::new(bad)), "id").unwrap_err();
            assert!(matches!(err, CgroupError::InvalidPath { .. }), "{bad}: {err}");
        }
        for bad_id in ["", ".", "..", "a/b"] {
            assert!(resolve_path(None, bad_id).is_err(), "id {bad_id:?}");
        }
    }

    #[test]
    fn open_wants_the_stored_form() {
        for bad in ["berth/abc", "/berth/../abc", "/berth/abc/", "/"] {
            assert!(Cgroup::open(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_path() {
        let err = CgroupError::Write {
            path: PathBuf::from("/sys/fs/cgroup/pids/x/pids.max"),
            value: "10".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        let text = err.to_string();
        assert!(text.contains("/sys/fs/cgroup/pids/x/pids.max") && text.contains("\"10\""), "{text}");
    }

    fn limited_resources() -> LinuxResources {
        let mut memory = LinuxMemory::default();
        memory.set_limit(Some(64 << 20));
        let mut pids = LinuxPids::default();
        pids.set_limit(10);
        let mut resources = LinuxResources::default();
        resources.set_memory(Some(memory)).set_pids(Some(pids));
        resources
    }

    /// Where `name` lives on every hierarchy, for the cleanup guard.
    fn every_hierarchy_dir(name: &str) -> Vec<PathBuf> {
        let path = Path::new("/").join(name);
        match version() {
            CgroupVersion::V1 => mountinfo::read()
                .unwrap()
                .v1
                .iter()
                .map(|h| dir_in(&h.mount_point, &path))
                .collect(),
            CgroupVersion::V2 => vec![dir_in(Path::new(CGROUP_ROOT), &path)],
        }
    }

    fn read_in(cgroup: &Cgroup, file: &str) -> String {
        let dir = cgroup
            .directories()
            .into_iter()
            .find(|d| d.join(file).exists())
            .unwrap_or_else(|| panic!("no hierarchy has {file}"));
        std::fs::read_to_string(dir.join(file)).unwrap().trim().to_string()
    }

    #[test]
    fn lifecycle_on_the_host_version() {
        if !require_root("lifecycle_on_the_host_version") {
            return;
        }
        let top = unique_name("lifecycle");
        let _cleanup = Cleanup::new(every_hierarchy_dir(&top));
        let path = Path::new("/").join(&top).join("ctr");
        let cgroup = Cgroup::create(Some(&path), "ctr", Some(&limited_resources())).unwrap();
        assert_eq!(cgroup.path(), path);

        assert_eq!(read_in(&cgroup, "pids.max"), "10");
        match cgroup.version() {
            CgroupVersion::V1 => assert_eq!(read_in(&cgroup, "memory.limit_in_bytes"), "67108864"),
            CgroupVersion::V2 => assert_eq!(read_in(&cgroup, "memory.max"), "67108864"),
        }

        let mut child = Child::fork(testing::idle);
        cgroup.add_process(child.pid()).unwrap();
        assert_eq!(cgroup.pids().unwrap(), vec![child.pid()]);

        // A later runtime invocation finds the same cgroup from the path.
        let reopened = Cgroup::open(cgroup.path()).unwrap();
        assert_eq!(reopened.pids().unwrap(), vec![child.pid()]);

        assert!(!cgroup.is_frozen().unwrap());
        cgroup.freeze().unwrap();
        assert!(reopened.is_frozen().unwrap());
        reopened.thaw().unwrap();
        assert!(!cgroup.is_frozen().unwrap());
        assert_eq!(cgroup.oom_kills(), Some(0));

        child.kill();
        assert_eq!(cgroup.pids().unwrap(), Vec::<i32>::new());
        let dirs = cgroup.directories();
        cgroup.destroy().unwrap();
        for dir in &dirs {
            assert!(!dir.exists(), "{} survived destroy", dir.display());
        }
        cgroup.destroy().unwrap();
    }

    #[test]
    fn failed_create_removes_what_it_made() {
        if !require_root("failed_create_removes_what_it_made") {
            return;
        }
        let top = unique_name("rollback");
        let dirs = every_hierarchy_dir(&top);
        let _cleanup = Cleanup::new(dirs.clone());
        let mut resources = limited_resources();
        // Far beyond any machine's CPUs: the kernel refuses it after the
        // directories exist.
        let mut cpu = oci_spec::runtime::LinuxCpu::default();
        cpu.set_cpus(Some("4095".into()));
        resources.set_cpu(Some(cpu));
        let path = Path::new("/").join(&top).join("ctr");
        let err = Cgroup::create(Some(&path), "ctr", Some(&resources)).unwrap_err();
        assert!(err.to_string().contains("cpuset.cpus"), "{err}");
        for dir in &dirs {
            assert!(!dir.exists(), "{} survived the failed create", dir.display());
        }
    }
}
