//! The network-driver interface: Docker's `NetworkDriver` plugin protocol.
//!
//! A network is created once; endpoints are created on it and joined to a
//! sandbox (a container's network namespace, named by its path). The JSON
//! field names are those of Docker's remote network driver protocol.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// `/NetworkDriver.GetCapabilities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Capabilities {
    /// "local" or "global".
    pub scope: String,
    #[serde(default)]
    pub connectivity_scope: String,
}

/// One address pool handed to a network (`IPv4Data` / `IPv6Data`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamData {
    #[serde(default)]
    pub address_space: String,
    pub pool: String,
    #[serde(default)]
    pub gateway: String,
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, String>,
}

/// Request body of `/NetworkDriver.CreateNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(default)]
    pub options: BTreeMap<String, serde_json::Value>,
    #[serde(default, rename = "IPv4Data")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(default, rename = "IPv6Data")]
    pub ipv6_data: Vec<IpamData>,
}

/// An endpoint's interface as requested and as answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointInterface {
    #[serde(default)]
    pub address: String,
    #[serde(default, rename = "AddressIPv6")]
    pub address_ipv6: String,
    #[serde(default)]
    pub mac_address: String,
}

/// Request body of `/NetworkDriver.CreateEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(default)]
    pub interface: Option<EndpointInterface>,
    #[serde(default)]
    pub options: BTreeMap<String, serde_json::Value>,
}

/// Request body of `/NetworkDriver.Join`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// Path of the network namespace to join.
    pub sandbox_key: String,
    #[serde(default)]
    pub options: BTreeMap<String, serde_json::Value>,
}

/// The interface a join moves into the sandbox, and what to call it there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceName {
    pub src_name: String,
    pub dst_prefix: String,
}

/// A route a join asks the engine to add in the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StaticRoute {
    pub destination: String,
    pub route_type: u32,
    #[serde(default)]
    pub next_hop: String,
}

/// Response body of `/NetworkDriver.Join`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinResponse {
    #[serde(default)]
    pub interface_name: Option<InterfaceName>,
    #[serde(default)]
    pub gateway: String,
    #[serde(default, rename = "GatewayIPv6")]
    pub gateway_ipv6: String,
    #[serde(default)]
    pub static_routes: Vec<StaticRoute>,
    #[serde(default)]
    pub disable_gateway_service: bool,
}

/// A network driver. Implementations must be safe to call concurrently.
pub trait NetworkDriver: Send + Sync {
    fn capabilities(&self) -> Capabilities;
    fn create_network(&self, req: &CreateNetworkRequest) -> Result<()>;
    fn delete_network(&self, network_id: &str) -> Result<()>;
    /// Creates an endpoint and returns the interface the driver chose
    /// (fields the request left empty), or `None` when it chose nothing.
    fn create_endpoint(&self, req: &CreateEndpointRequest) -> Result<Option<EndpointInterface>>;
    fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()>;
    fn join(&self, req: &JoinRequest) -> Result<JoinResponse>;
    fn leave(&self, network_id: &str, endpoint_id: &str) -> Result<()>;
}
