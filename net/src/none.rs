//! The `none` network driver: a container with only its loopback interface.
//!
//! The engine gives the container a fresh network namespace; this driver adds
//! nothing to it.

use berth_plugin::error::Result;
use berth_plugin::network::*;
use berth_plugin::NetworkDriver;

use crate::stateless;

/// The name users give with `--network none`.
pub const NAME: &str = "none";

pub struct NoneDriver;

impl NetworkDriver for NoneDriver {
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
