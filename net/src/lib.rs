//! berth-net: network drivers behind [`berth_plugin::NetworkDriver`].
//!
//! One file per driver. This crate never depends on the engine: the engine
//! calls [`register_builtin`] to put these drivers into its registry.

pub mod host;
pub mod none;

use std::sync::Arc;

use berth_plugin::{Registry, Transport};

/// Registers every built-in network driver.
pub fn register_builtin(registry: &mut Registry) -> berth_plugin::error::Result<()> {
    registry.register_network(none::NAME, Arc::new(none::NoneDriver), Transport::Builtin)?;
    registry.register_network(host::NAME, Arc::new(host::HostDriver), Transport::Builtin)?;
    Ok(())
}

/// Drivers that give a container no interface of their own: they accept
/// any network, hold no state, and join without moving a link.
pub(crate) mod stateless {
    use berth_plugin::error::Result;
    use berth_plugin::network::*;

    pub fn capabilities() -> Capabilities {
        Capabilities {
            scope: "local".into(),
            connectivity_scope: "local".into(),
        }
    }

    /// Joins without an interface: the sandbox keeps what it has.
    pub fn join(_req: &JoinRequest) -> Result<JoinResponse> {
        Ok(JoinResponse {
            disable_gateway_service: true,
            ..JoinResponse::default()
        })
    }
}
