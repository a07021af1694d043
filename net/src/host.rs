//! The `host` network driver: the container shares the host's network namespace.
//!
//! The engine does not create a network namespace for such a container; this
//! driver has nothing to set up.

use berth_plugin::error::Result;
use berth_plugin::network::*;
use berth_plugin::NetworkDriver;

use crate::stateless;

/// The name users give with `--network host`.
pub const NAME: &str = "host";

pub struct HostDriver;

impl NetworkDriver for HostDriver {
    fn capabilities(&self) -> Capabilities {
        stateless::capabilities()
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
    fn join(&self, req: &JoinRequest) -> Result<JoinResponse> {
        stateless::join(req)
    }
    fn leave(&self, _network_id: &str, _endpoint_id: &str) -> Result<()> {
        Ok(())
    }
}
