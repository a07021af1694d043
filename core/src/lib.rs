//! berth-core: the engine.
//!
//! Owns the OCI runtime ([`runtime`]), container hardening ([`security`]) and
//! the driver registry assembly ([`drivers`]). Later: images, the daemon and
//! its API. Binaries live in `src/bin/`.

pub mod cli;
pub mod client;
pub mod container;
pub mod daemon;
pub mod drivers;
pub mod image;
pub mod monitor;
pub mod network;
pub mod plugins;
pub mod runtime;
pub mod security;
pub mod sys;
pub mod time;
