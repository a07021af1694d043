//! cgroup v1: a container's cgroup is one directory, at the same path, on
//! every mounted hierarchy (named ones such as `name=systemd` too, so that
//! tools that look there find the container). Resources go to the
//! hierarchy of their controller ([`resources`]); freezing uses the freezer
//! hierarchy.
//!
//! On hybrid hosts the empty cgroup2 beside the v1 hierarchies is left
//! alone: it has no controllers to offer.

mod resources;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::cgroupfs;
use super::mountinfo::{self, Hierarchy};
use super::{dir_in, relative, CgroupError};

/// `freezer.state` values (Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst).
const FROZEN: &str = "FROZEN";
const THAWED: &str = "THAWED";

/// Hierarchies to list processes from, best first: all of them hold every
/// process of the container, these are the ones most hosts mount.
const PROCS_FROM: [&str; 3] = ["pids", "freezer", "memory"];

#[derive(Debug)]
pub(crate) struct V1Cgroup {
    dirs: Vec<HierarchyDir>,
}

/// The container's directory on one hierarchy.
#[derive(Debug)]
struct HierarchyDir {
    hierarchy: Hierarchy,
    dir: PathBuf,
}

impl V1Cgroup {
    /// The cgroup at `path` on `hierarchies`, without touching the
    /// filesystem.
    pub(crate) fn at(hierarchies: Vec<Hierarchy>, path: &Path) -> Result<Self, CgroupError> {
        if hierarchies.is_empty() {
            return Err(CgroupError::NoMount {
                what: "cgroup v1 hierarchy",
                path: PathBuf::from(mountinfo::MOUNTINFO),
            });
        }
        let dirs = hierarchies
            .into_iter()
            .map(|hierarchy| HierarchyDir {
                dir: dir_in(&hierarchy.mount_point, path),
                hierarchy,
            })
            .collect();
        Ok(V1Cgroup { dirs })
    }

    /// Makes the directories on every hierarchy, readies cpuset and applies
    /// `resources`; removes what it made if any step fails.
    pub(crate) fn create(hierarchies: Vec<Hierarchy>, path: &Path, resources: Option<&LinuxResources>) -> Result<Self, CgroupError> {
        let cgroup = Self::at(hierarchies, path)?;
        let mut created = Vec::new();
        let result = cgroup
            .make_dirs(path, &mut created)
            .and_then(|()| cgroup.init_cpuset(path))
            .and_then(|()| resources::apply(&cgroup, resources));
        match result {
            Ok(()) => Ok(cgroup),
            Err(e) => {
                cgroupfs::remove_created(&created);
                Err(e)
            }
        }
    }

    fn make_dirs(&self, path: &Path, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
        for d in &self.dirs {
            cgroupfs::make_dirs(&d.hierarchy.mount_point, relative(path), created)?;
        }
        Ok(())
    }

    /// A new cpuset cgroup starts with no CPUs and no memory nodes, and
    /// adding a task to it fails (ENOSPC). Every directory on the way down
    /// gets its parent's sets unless it has its own, whether or not the spec
    /// asks for cpusets.
    fn init_cpuset(&self, path: &Path) -> Result<(), CgroupError> {
        let Some(cpuset) = self.dirs.iter().find(|d| d.hierarchy.has("cpuset")) else {
            return Ok(());
        };
        let mut parent = cpuset.hierarchy.mount_point.clone();
        for component in relative(path).components() {
            let dir = parent.join(component);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if cgroupfs::read(&dir.join(file))?.trim().is_empty() {
                    let inherited = cgroupfs::read(&parent.join(file))?;
                    cgroupfs::write(&dir.join(file), inherited.trim())?;
                }
            }
            parent = dir;
        }
        Ok(())
    }

    /// The directory on the hierarchy that has `controller`.
    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs.iter().find(|d| d.hierarchy.has(controller)).map(|d| d.dir.as_path())
    }

    /// Like [`V1Cgroup::dir`], failing when the controller is not mounted.
    fn require(&self, controller: &str, resource: &'static str) -> Result<&Path, CgroupError> {
        self.dir(controller).ok_or_else(|| CgroupError::MissingController {
            resource,
            controller: controller.to_string(),
            path: PathBuf::from(mountinfo::MOUNTINFO),
        })
    }

    pub(crate) fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for d in &self.dirs {
            cgroupfs::write(&d.dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    pub(crate) fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = PROCS_FROM.iter().find_map(|c| self.dir(c)).unwrap_or(&self.dirs[0].dir);
        cgroupfs::procs(dir)
    }

    pub(crate) fn freeze(&self) -> Result<(), CgroupError> {
        let state = self.require("freezer", "freeze")?.join("freezer.state");
        // Writing FROZEN again retries the tasks that did not freeze yet.
        let result = cgroupfs::wait_until("freeze", &state, || {
            cgroupfs::write(&state, FROZEN)?;
            let now = cgroupfs::read(&state)?.trim().to_string();
            Ok((now == FROZEN, now))
        });
        if result.is_err() {
            let _ = cgroupfs::write(&state, THAWED);
        }
        result
    }

    pub(crate) fn thaw(&self) -> Result<(), CgroupError> {
        let state = self.require("freezer", "thaw")?.join("freezer.state");
        cgroupfs::write(&state, THAWED)?;
        cgroupfs::wait_until("thaw", &state, || {
            let now = cgroupfs::read(&state)?.trim().to_string();
            Ok((now == THAWED, now))
        })
    }

    pub(crate) fn is_frozen(&self) -> Result<bool, CgroupError> {
        let state = self.require("freezer", "freezer state")?.join("freezer.state");
        Ok(cgroupfs::read(&state)?.trim() == FROZEN)
    }

    /// Removes the cgroup on every hierarchy; tries them all and reports
    /// the first failure.
    pub(crate) fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        for d in &self.dirs {
            if let Err(e) = cgroupfs::remove_tree(&d.dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub(crate) fn oom_kills(&self) -> Option<u64> {
        let control = cgroupfs::read(&self.dir("memory")?.join("memory.oom_control")).ok()?;
        cgroupfs::keyed_value(&control, "oom_kill")
    }

    #[cfg(test)]
    pub(crate) fn directories(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.dir.clone()).collect()
    }
}

/// See [`super::Cgroup::update`].
pub(crate) fn update_resources(cgroup: &V1Cgroup, r: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError> {
    resources::update(cgroup, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::cgroups::testing::{require_root, unique_name, Child, Cleanup};
    use oci_spec::runtime::{LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory};

    fn hierarchies() -> Option<Vec<Hierarchy>> {
        let v1 = mountinfo::read().unwrap().v1;
        if v1.is_empty() {
            eprintln!("not applicable: no cgroup v1 hierarchy mounted");
            return None;
        }
        Some(v1)
    }

    fn cleanup_for(hierarchies: &[Hierarchy], top: &str) -> Cleanup {
        Cleanup::new(hierarchies.iter().map(|h| h.mount_point.join(top)).collect())
    }

    fn read(cgroup: &V1Cgroup, controller: &str, file: &str) -> String {
        let dir = cgroup.dir(controller).unwrap();
        std::fs::read_to_string(dir.join(file)).unwrap().trim().to_string()
    }

    #[test]
    fn creates_on_every_hierarchy_with_cpusets_ready() {
        if !require_root("creates_on_every_hierarchy_with_cpusets_ready") {
            return;
        }
        let Some(hierarchies) = hierarchies() else {
            return;
        };
        let top = unique_name("v1-create");
        let _cleanup = cleanup_for(&hierarchies, &top);
        let path = Path::new("/").join(&top).join("a/ctr");
        let cgroup = V1Cgroup::create(hierarchies.clone(), &path, None).unwrap();
        for h in &hierarchies {
            assert!(h.mount_point.join(relative(&path)).is_dir(), "{}", h.mount_point.display());
        }
        if let Some(cpuset) = cgroup.dir("cpuset") {
            let root = mountinfo::find(&hierarchies, "cpuset").unwrap();
            let host_cpus = std::fs::read_to_string(root.mount_point.join("cpuset.cpus")).unwrap();
            assert_eq!(read(&cgroup, "cpuset", "cpuset.cpus"), host_cpus.trim());
            assert!(!read(&cgroup, "cpuset", "cpuset.mems").is_empty(), "{}", cpuset.display());
        }
        // Without resources the default device rules still apply.
        if cgroup.dir("devices").is_some() {
            let list = read(&cgroup, "devices", "devices.list");
            assert!(list.contains("c 1:3 rwm") && list.contains("b *:* m"), "{list}");
            assert!(!list.contains("a *:* rwm"), "{list}");
        }
        // A child can move in: cpuset is initialised.
        let child = Child::fork(crate::runtime::cgroups::testing::idle);
        cgroup.add_process(child.pid()).unwrap();
        assert_eq!(cgroup.pids().unwrap(), vec![child.pid()]);
    }

    #[test]
    fn applies_resources_to_their_hierarchies() {
        if !require_root("applies_resources_to_their_hierarchies") {
            return;
        }
        let Some(hierarchies) = hierarchies() else {
            return;
        };
        let top = unique_name("v1-resources");
        let _cleanup = cleanup_for(&hierarchies, &top);

        let mut memory = LinuxMemory::default();
        memory
            .set_limit(Some(64 << 20))
            .set_reservation(Some(32 << 20))
            .set_swappiness(Some(10))
            .set_disable_oom_killer(Some(true));
        let mut cpu = LinuxCpu::default();
        cpu.set_shares(Some(512)).set_quota(Some(50_000)).set_period(Some(100_000));
        let mut device = LinuxDeviceCgroup::default();
        device
            .set_allow(true)
            .set_typ(Some(LinuxDeviceType::B))
            .set_major(Some(7))
            .set_minor(Some(0))
            .set_access(Some("r".into()));
        let mut resources = LinuxResources::default();
        resources
            .set_memory(Some(memory))
            .set_cpu(Some(cpu))
            .set_devices(Some(vec![device]));

        let path = Path::new("/").join(&top).join("ctr");
        let cgroup = V1Cgroup::create(hierarchies, &path, Some(&resources)).unwrap();
        if cgroup.dir("memory").is_some() {
            assert_eq!(read(&cgroup, "memory", "memory.limit_in_bytes"), "67108864");
            assert_eq!(read(&cgroup, "memory", "memory.soft_limit_in_bytes"), "33554432");
            assert_eq!(read(&cgroup, "memory", "memory.swappiness"), "10");
            let oom_control = read(&cgroup, "memory", "memory.oom_control");
            assert_eq!(cgroupfs::keyed_value(&oom_control, "oom_kill_disable"), Some(1));
            assert_eq!(cgroup.oom_kills(), Some(0));
        }
        if cgroup.dir("cpu").is_some() {
            assert_eq!(read(&cgroup, "cpu", "cpu.shares"), "512");
            assert_eq!(read(&cgroup, "cpu", "cpu.cfs_quota_us"), "50000");
            assert_eq!(read(&cgroup, "cpu", "cpu.cfs_period_us"), "100000");
        }
        if cgroup.dir("devices").is_some() {
            let list = read(&cgroup, "devices", "devices.list");
            assert!(list.contains("b 7:0 r") && list.contains("c 1:5 rwm"), "{list}");
        }
    }

    #[test]
    fn memory_and_swap_can_be_raised_and_lowered() {
        if !require_root("memory_and_swap_can_be_raised_and_lowered") {
            return;
        }
        let Some(hierarchies) = hierarchies() else {
            return;
        };
        if mountinfo::find(&hierarchies, "memory").is_none() {
            eprintln!("not applicable: no v1 memory hierarchy");
            return;
        }
        let top = unique_name("v1-swap");
        let _cleanup = cleanup_for(&hierarchies, &top);
        let path = Path::new("/").join(&top);
        let cgroup = V1Cgroup::create(hierarchies, &path, None).unwrap();
        let memsw = cgroup.dir("memory").unwrap().join("memory.memsw.limit_in_bytes");
        let set = |limit: i64, swap: i64| {
            let mut memory = LinuxMemory::default();
            memory.set_limit(Some(limit)).set_swap(Some(swap));
            resources::memory(&cgroup, &memory)
        };
        if !memsw.exists() {
            let err = set(64 << 20, 128 << 20).unwrap_err();
            assert!(matches!(err, CgroupError::SwapUnsupported { .. }), "{err}");
            set(64 << 20, 64 << 20).unwrap();
            return;
        }
        // Up from unlimited, then both higher, then both lower: each needs
        // its own order of writes.
        set(64 << 20, 128 << 20).unwrap();
        set(256 << 20, 512 << 20).unwrap();
        assert_eq!(read(&cgroup, "memory", "memory.memsw.limit_in_bytes"), (512u64 << 20).to_string());
        set(16 << 20, 32 << 20).unwrap();
        assert_eq!(read(&cgroup, "memory", "memory.limit_in_bytes"), (16u64 << 20).to_string());
        assert_eq!(read(&cgroup, "memory", "memory.memsw.limit_in_bytes"), (32u64 << 20).to_string());
        set(-1, -1).unwrap();
    }
}
