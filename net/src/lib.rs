//! berth-net: network drivers behind [`berth_plugin::NetworkDriver`].
//!
//! One file per driver. This crate never depends on the engine: the engine
//! calls [`register_builtin`] to put these drivers into its registry.

pub mod bridge;
pub mod endpoint;
pub mod etcd;
pub mod firewall;
pub mod host;
pub mod ipam;
pub mod macvlan;
pub mod netlink;
pub mod netns;
pub mod none;
pub mod overlay;

use std::path::Path;
use std::sync::Arc;

use berth_plugin::{Registry, Transport};

/// Registers every built-in network driver; drivers with state keep it
/// under `home` and make links in the caller's network namespace; the
/// overlay driver shares networks through `cluster` (without one it
/// refuses to create networks).
pub fn register_builtin(registry: &mut Registry, home: &Path, cluster: Option<&overlay::Cluster>) -> berth_plugin::error::Result<()> {
    registry.register_network(none::NAME, Arc::new(stateless::StatelessDriver), Transport::Builtin)?;
    registry.register_network(host::NAME, Arc::new(stateless::StatelessDriver), Transport::Builtin)?;
    let bridge = bridge::BridgeDriver::new(&home.join(bridge::NAME), None)?;
    registry.register_network(bridge::NAME, Arc::new(bridge), Transport::Builtin)?;
    let macvlan = macvlan::MacvlanDriver::new(&home.join(macvlan::NAME), None)?;
    registry.register_network(macvlan::NAME, Arc::new(macvlan), Transport::Builtin)?;
    let overlay = overlay::OverlayDriver::new(&home.join(overlay::NAME), None, cluster)?;
    registry.register_network(overlay::NAME, Arc::new(overlay), Transport::Builtin)?;
    Ok(())
}

/// Drivers that give a container no interface of their own (`none`,
/// `host`): they accept any network, hold no state, and join without
/// moving a link. What differs, the namespace the container gets, is the
/// engine's choice by driver name.
pub mod stateless {
    use berth_plugin::error::Result;
    use berth_plugin::network::*;
    use berth_plugin::NetworkDriver;

    pub struct StatelessDriver;

    impl NetworkDriver for StatelessDriver {
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                scope: "local".into(),
                connectivity_scope: "local".into(),
            }
        }
        fn create_network(&self, _req: &CreateNetworkRequest) -> Result<()> {
            Ok(())
        }
        fn delete_network(&self, _network_id: &str) -> Result<()> {
            Ok(())
        }
        fn create_endpoint(&self, _req: &CreateEndpointRequest) -> Result<Option<EndpointInterface>> {
            Ok(None)
        }
        fn delete_endpoint(&self, _network_id: &str, _endpoint_id: &str) -> Result<()> {
            Ok(())
        }
        /// Joins without an interface: the sandbox keeps what it has.
        fn join(&self, _req: &JoinRequest) -> Result<JoinResponse> {
            Ok(JoinResponse {
                disable_gateway_service: true,
                ..JoinResponse::default()
            })
        }
        fn leave(&self, _network_id: &str, _endpoint_id: &str) -> Result<()> {
            Ok(())
        }
    }
}
