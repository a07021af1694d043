//! The `none` network driver: a container with only its loopback interface.
//!
//! The engine gives the container a fresh network namespace; the driver
//! ([`crate::stateless::StatelessDriver`]) adds nothing to it.

/// The name users give with `--network none`.
pub const NAME: &str = "none";
