//! Which namespaces a container process creates and which it joins.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::runtime::error::InitError;

/// The namespace plan of a container process.
#[derive(Debug, Clone)]
pub struct NamespacePlan {
    /// Namespaces to join, user namespace first.
    pub join: Vec<(CloneFlags, PathBuf)>,
    /// New namespaces (without the user namespace).
    pub new: CloneFlags,
    /// Whether a new user namespace is created.
    pub new_user: bool,
}

fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The /proc/PID/ns entry name of each namespace type, in the order exec
/// joins them (user first: it grants the rights to join the others;
/// mount last: joining it changes what later paths mean).
pub const JOIN_ORDER: [(&str, LinuxNamespaceType); 8] = [
    ("user", LinuxNamespaceType::User),
    ("ipc", LinuxNamespaceType::Ipc),
    ("uts", LinuxNamespaceType::Uts),
    ("net", LinuxNamespaceType::Network),
    ("pid", LinuxNamespaceType::Pid),
    ("cgroup", LinuxNamespaceType::Cgroup),
    ("time", LinuxNamespaceType::Time),
    ("mnt", LinuxNamespaceType::Mount),
];

impl NamespacePlan {
    fn empty() -> Self {
        NamespacePlan {
            join: Vec::new(),
            new: CloneFlags::empty(),
            new_user: false,
        }
    }

    /// The plan for a container's init, from config.json.
    pub fn for_container(namespaces: &[LinuxNamespace]) -> Self {
        let mut plan = NamespacePlan::empty();
        for (_, t) in JOIN_ORDER {
            let Some(ns) = namespaces.iter().find(|n| n.typ() == t) else {
                continue;
            };
            match ns.path() {
                Some(p) => plan.join.push((flag(t), p.clone())),
                None if t == LinuxNamespaceType::User => plan.new_user = true,
                None => plan.new.insert(flag(t)),
            }
        }
        plan
    }

    /// The plan for `exec`: join every namespace of the running init that
    /// differs from ours.
    pub fn for_exec(init_pid: i32) -> Self {
        let mut plan = NamespacePlan::empty();
        for (name, t) in JOIN_ORDER {
            let theirs = PathBuf::from(format!("/proc/{init_pid}/ns/{name}"));
            let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
            match (std::fs::read_link(&theirs), std::fs::read_link(&ours)) {
                (Ok(a), Ok(b)) if a != b => plan.join.push((flag(t), theirs)),
                _ => {}
            }
        }
        plan
    }

    /// Whether the process that applies this plan must fork once more for
    /// the pid (or time) namespace to take effect.
    pub fn needs_fork(&self) -> bool {
        let child_only = CloneFlags::CLONE_NEWPID | CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
        self.new.intersects(child_only) || self.join.iter().any(|(f, _)| f.intersects(child_only))
    }

    pub fn has_new(&self, t: LinuxNamespaceType) -> bool {
        if t == LinuxNamespaceType::User {
            return self.new_user;
        }
        self.new.contains(flag(t))
    }

    /// Joins the namespaces given by path.
    /// Every file is opened before the first setns: once in another user
    /// namespace we may no longer open the others.
    pub fn join_all(&self) -> Result<(), InitError> {
        let files = self
            .join
            .iter()
            .map(|(f, path)| {
                std::fs::File::open(path)
                    .map(|file| (*f, path, file))
                    .map_err(|e| InitError::new("join namespace", Some(path), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (f, path, file) in files {
            setns(file.as_fd(), f).map_err(|e| InitError::new("join namespace", Some(path), e))?;
        }
        Ok(())
    }

    /// Creates the new namespaces other than the user namespace.
    pub fn unshare_new(&self) -> Result<(), InitError> {
        if self.new.is_empty() {
            return Ok(());
        }
        unshare(self.new).map_err(|e| InitError::new("unshare namespaces", Some(Path::new(&format!("{:?}", self.new))), e))
    }
}
