//! The fork dance: from the runtime to the container's first process.
//!
//! The runtime forks *stage 1*, puts it in the container's cgroup, and
//! talks to it over a [`sync::Channel`]. Stage 1 joins the namespaces given
//! by path, creates the user namespace (the runtime writes its id maps),
//! unshares the other new namespaces and, because a pid namespace only
//! applies to children, forks the container's init as a sibling
//! (CLONE_PARENT) so that the runtime, not stage 1, is its parent. The init
//! ([`init`]) sets up the rootfs and waits for `start`; [`finalize`] is the
//! last stretch every container process runs before execve.

pub mod finalize;
pub mod init;
pub mod namespaces;
pub mod supervise;
pub mod sync;
pub mod tty;
