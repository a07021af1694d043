//! Container hardening: seccomp, capabilities, AppArmor.

pub mod apparmor;
pub mod capabilities;
pub mod seccomp;
