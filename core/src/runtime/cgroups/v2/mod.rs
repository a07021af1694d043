//! cgroup v2: a container's cgroup is one directory in the unified
//! hierarchy. Controllers must be enabled in every ancestor's
//! `cgroup.subtree_control` before the directory offers their files;
//! freezing is built in (`cgroup.freeze`), and the device controller is an
//! eBPF program ([`super::devices`]).

mod resources;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{cgroupfs, dir_in, relative, CgroupError};

#[derive(Debug)]
pub(crate) struct V2Cgroup {
    mount_point: PathBuf,
    dir: PathBuf,
}

impl V2Cgroup {
    /// The cgroup at `path` in the hierarchy mounted at `mount_point`,
    /// without touching the filesystem.
    pub(crate) fn at(mount_point: &Path, path: &Path) -> Self {
        V2Cgroup {
            mount_point: mount_point.to_path_buf(),
            dir: dir_in(mount_point, path),
        }
    }

    /// Makes the directory, enables controllers on the way down and applies
    /// `resources`; removes what it made if any step fails.
    pub(crate) fn create(mount_point: &Path, path: &Path, resources: Option<&LinuxResources>) -> Result<Self, CgroupError> {
        let cgroup = Self::at(mount_point, path);
        let mut created = Vec::new();
        let result = cgroupfs::make_dirs(mount_point, relative(path), &mut created)
            .and_then(|_| cgroup.enable_controllers(path, &resources::controllers_needed(resources)))
            .and_then(|()| resources::apply(&cgroup, resources));
        match result {
            Ok(()) => Ok(cgroup),
            Err(e) => {
                cgroupfs::remove_created(&created);
                Err(e)
            }
        }
    }

    /// Enables, in every ancestor of the cgroup, each controller the
    /// ancestor has (as runc does, so that later updates find them), then
    /// checks that the cgroup has the `needed` ones: `(resource,
    /// controller)` pairs. Failing to enable a controller nobody needs is
    /// not an error: an ancestor with processes in it cannot enable any.
    fn enable_controllers(&self, path: &Path, needed: &[(&'static str, String)]) -> Result<(), CgroupError> {
        let mut ancestor = self.mount_point.clone();
        let components: Vec<_> = relative(path).components().collect();
        for (depth, component) in components.iter().enumerate() {
            let available = cgroupfs::read(&ancestor.join("cgroup.controllers"))?;
            let subtree_control = ancestor.join("cgroup.subtree_control");
            let enabled = cgroupfs::read(&subtree_control)?;
            for controller in available.split_whitespace() {
                if enabled.split_whitespace().any(|c| c == controller) {
                    continue;
                }
                let result = cgroupfs::write(&subtree_control, &format!("+{controller}"));
                if result.is_err() && needed.iter().any(|(_, c)| c == controller) {
                    return result;
                }
            }
            if depth + 1 < components.len() {
                ancestor.push(component);
            }
        }
        let controllers_file = self.dir.join("cgroup.controllers");
        let have = cgroupfs::read(&controllers_file)?;
        match needed.iter().find(|(_, c)| !have.split_whitespace().any(|h| h == c)) {
            Some((resource, controller)) => Err(CgroupError::MissingController {
                resource,
                controller: controller.clone(),
                path: controllers_file,
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn directory(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        cgroupfs::write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    pub(crate) fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        cgroupfs::procs(&self.dir)
    }

    /// Whether `cgroup.events` reports the cgroup frozen, and what it says.
    fn frozen_state(&self) -> Result<(bool, String), CgroupError> {
        let events = cgroupfs::read(&self.dir.join("cgroup.events"))?;
        let frozen = cgroupfs::keyed_value(&events, "frozen") == Some(1);
        Ok((frozen, events.trim().replace('\n', ", ")))
    }

    pub(crate) fn freeze(&self) -> Result<(), CgroupError> {
        let freeze = self.dir.join("cgroup.freeze");
        cgroupfs::write(&freeze, "1")?;
        let result = cgroupfs::wait_until("freeze", &self.dir.join("cgroup.events"), || self.frozen_state());
        if result.is_err() {
            let _ = cgroupfs::write(&freeze, "0");
        }
        result
    }

    pub(crate) fn thaw(&self) -> Result<(), CgroupError> {
        cgroupfs::write(&self.dir.join("cgroup.freeze"), "0")?;
        cgroupfs::wait_until("thaw", &self.dir.join("cgroup.events"), || {
            let (frozen, state) = self.frozen_state()?;
            Ok((!frozen, state))
        })
    }

    pub(crate) fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(self.frozen_state()?.0)
    }

    pub(crate) fn destroy(&self) -> Result<(), CgroupError> {
        cgroupfs::remove_tree(&self.dir)
    }

    pub(crate) fn oom_kills(&self) -> Option<u64> {
        let events = cgroupfs::read(&self.dir.join("memory.events")).ok()?;
        cgroupfs::keyed_value(&events, "oom_kill")
    }
}

/// See [`super::Cgroup::update`].
pub(crate) fn update_resources(cgroup: &V2Cgroup, r: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError> {
    resources::update(cgroup, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::cgroups::mountinfo;
    use crate::runtime::cgroups::testing::{idle, require_root, unique_name, Child, Cleanup};
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxPids};

    /// The cgroup2 mount: the host's hierarchy on v2, the empty one beside
    /// v1 on hybrid hosts (device programs and the freezer work there too).
    fn unified() -> Option<PathBuf> {
        let unified = mountinfo::read().unwrap().unified;
        if unified.is_none() {
            eprintln!("not applicable: no cgroup2 mount");
        }
        unified
    }

    fn has_controller(mount_point: &Path, controller: &str) -> bool {
        std::fs::read_to_string(mount_point.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == controller)
    }

    #[test]
    fn lifecycle_with_devices_and_freezer() {
        if !require_root("v2 lifecycle_with_devices_and_freezer") {
            return;
        }
        let Some(mount_point) = unified() else { return };
        let top = unique_name("v2-lifecycle");
        let _cleanup = Cleanup::new(vec![mount_point.join(&top)]);
        // The spec allows /dev/kmsg for reading only; the defaults allow
        // /dev/null and nothing else of interest.
        let mut kmsg = LinuxDeviceCgroup::default();
        kmsg.set_allow(true)
            .set_typ(Some(LinuxDeviceType::C))
            .set_major(Some(1))
            .set_minor(Some(11))
            .set_access(Some("w".into()));
        let mut resources = LinuxResources::default();
        resources.set_devices(Some(vec![kmsg]));
        let path = Path::new("/").join(&top).join("ctr");
        let cgroup = V2Cgroup::create(&mount_point, &path, Some(&resources)).unwrap();

        let mut probe = Child::fork_probe(c"/dev/kmsg");
        cgroup.add_process(probe.pid()).unwrap();
        assert_eq!(cgroup.pids().unwrap(), vec![probe.pid()]);
        let outcome = Child::probe_outcome(probe.release_and_wait());
        assert_eq!(outcome, ("opened", "EPERM"), "/dev/null, then /dev/kmsg for reading");

        let child = Child::fork(idle);
        cgroup.add_process(child.pid()).unwrap();
        assert!(!cgroup.is_frozen().unwrap());
        cgroup.freeze().unwrap();
        assert!(cgroup.is_frozen().unwrap());
        cgroup.thaw().unwrap();
        assert!(!cgroup.is_frozen().unwrap());
        drop(child);

        cgroup.destroy().unwrap();
        assert!(!cgroup.directory().exists());
        assert!(
            mount_point.join(&top).exists(),
            "destroy removes the container's cgroup, not its parent"
        );
        cgroup.destroy().unwrap();
    }

    #[test]
    fn a_missing_controller_is_reported_and_nothing_is_left() {
        if !require_root("v2 a_missing_controller_is_reported_and_nothing_is_left") {
            return;
        }
        let Some(mount_point) = unified() else { return };
        if has_controller(&mount_point, "pids") {
            eprintln!("not applicable: this cgroup2 has the pids controller");
            return;
        }
        let top = unique_name("v2-missing");
        let _cleanup = Cleanup::new(vec![mount_point.join(&top)]);
        let mut pids = LinuxPids::default();
        pids.set_limit(10);
        let mut resources = LinuxResources::default();
        resources.set_pids(Some(pids));
        let path = Path::new("/").join(&top).join("ctr");
        let err = V2Cgroup::create(&mount_point, &path, Some(&resources)).unwrap_err();
        assert!(
            matches!(err, CgroupError::MissingController { ref controller, .. } if controller == "pids"),
            "{err}"
        );
        assert!(!mount_point.join(&top).exists());
    }
}
