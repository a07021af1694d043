//! The `none` network driver: a container with only its loopback interface.
//!
//! The engine gives the container a fresh network namespace; the driver
//! ([`crate::stateless::StatelessDriver`]) adds nothing to it.

/// The driver's name (Docker's); the network users give with
/// `--network none` is the engine's, on this driver.
pub const NAME: &str = "null";
