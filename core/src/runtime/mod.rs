//! berth-runtime: a runc-compatible OCI runtime.
//!
//! One file per container operation (`container_*.rs`); [`process`] owns
//! the fork dance from the runtime to the container's process, [`rootfs`]
//! the mounts and devices, [`cgroups`] the resource limits.

pub mod cgroups;
pub mod cloned_binary;
pub mod container_create;
pub mod container_delete;
pub mod container_exec;
pub mod container_kill;
pub mod container_pause;
pub mod container_ps;
pub mod container_run;
pub mod container_start;
pub mod container_state;
pub mod container_update;
pub mod error;
pub mod hooks;
pub mod process;
pub mod rootfs;
pub mod spec;
pub mod state;
