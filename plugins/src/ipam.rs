//! The address-management interface: Docker's `IpamDriver` plugin protocol.
//!
//! A network asks its IPAM driver for a pool (a subnet), then for an
//! address in it per endpoint. Field names follow Docker's remote IPAM
//! protocol (`/IpamDriver.RequestPool`, `RequestAddress`, ...).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// `/IpamDriver.GetCapabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Capabilities {
    #[serde(default, rename = "RequiresMACAddress")]
    pub requires_mac_address: bool,
    #[serde(default)]
    pub requires_request_replay: bool,
}

/// `/IpamDriver.GetDefaultAddressSpaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddressSpaces {
    pub local_default_address_space: String,
    pub global_default_address_space: String,
}

/// Request body of `/IpamDriver.RequestPool`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoolRequest {
    #[serde(default)]
    pub address_space: String,
    /// The subnet asked for, empty for "any".
    #[serde(default)]
    pub pool: String,
    #[serde(default)]
    pub sub_pool: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default, rename = "V6")]
    pub v6: bool,
}

/// Response body of `/IpamDriver.RequestPool`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pool {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The subnet, `ADDR/PREFIX`.
    pub pool: String,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// Request body of `/IpamDriver.RequestAddress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddressRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The address asked for, empty for "any".
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// Response body of `/IpamDriver.RequestAddress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    /// `ADDR/PREFIX`.
    pub address: String,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// An IPAM driver. Implementations must be safe to call concurrently.
pub trait IpamDriver: Send + Sync {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    fn default_address_spaces(&self) -> Result<AddressSpaces>;
    fn request_pool(&self, req: &PoolRequest) -> Result<Pool>;
    fn release_pool(&self, pool_id: &str) -> Result<()>;
    fn request_address(&self, req: &AddressRequest) -> Result<Address>;
    fn release_address(&self, pool_id: &str, address: &str) -> Result<()>;
}
