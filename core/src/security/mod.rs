//! Container hardening: seccomp, capabilities, AppArmor.

pub mod apparmor;
pub mod capabilities;
pub mod default_profile;
pub mod seccomp;
