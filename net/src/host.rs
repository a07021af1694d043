//! The `host` network driver: the container shares the host's network
//! namespace.
//!
//! The engine creates no network namespace for such a container; the driver
//! ([`crate::stateless::StatelessDriver`]) has nothing to set up.

/// The name users give with `--network host`.
pub const NAME: &str = "host";
