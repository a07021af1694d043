//! The volume-driver interface: Docker's `VolumeDriver` plugin protocol.
//!
//! Message names and JSON fields follow Docker's volume plugin protocol
//! (`/VolumeDriver.Create`, `Mount`, `Unmount`, ...), so the same structures
//! travel to a built-in driver, a loaded shared object or a Docker plugin
//! listening on a UNIX socket.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A volume as a driver reports it (`/VolumeDriver.Get` and `.List`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    /// Where the volume is mounted on the host, empty while not mounted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mountpoint: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status: BTreeMap<String, serde_json::Value>,
}

/// Whether a driver's volumes are visible to one host or to a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Local,
    Global,
}

/// Request body of `/VolumeDriver.Create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    pub name: String,
    #[serde(default)]
    pub opts: BTreeMap<String, String>,
}

/// Request body of `/VolumeDriver.Mount` and `.Unmount`: `id` names the
/// container that mounts, so drivers can count users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountRequest {
    pub name: String,
    #[serde(rename = "ID")]
    pub id: String,
}

/// A volume driver. Implementations must be safe to call concurrently.
pub trait VolumeDriver: Send + Sync {
    /// Creates `req.name` with the driver options; creating an existing
    /// volume with the same options succeeds (the call is idempotent).
    fn create(&self, req: &CreateRequest) -> Result<()>;
    /// Removes a volume; fails with `Conflict` while it is mounted.
    fn remove(&self, name: &str) -> Result<()>;
    /// Makes the volume available on the host for container `req.id` and
    /// returns the host path. Each mount is paired with one unmount.
    fn mount(&self, req: &MountRequest) -> Result<PathBuf>;
    /// Releases the mount that `req.id` holds.
    fn unmount(&self, req: &MountRequest) -> Result<()>;
    /// The host path of a mounted volume.
    fn path(&self, name: &str) -> Result<PathBuf>;
    /// One volume.
    fn get(&self, name: &str) -> Result<Volume>;
    /// Every volume the driver knows.
    fn list(&self) -> Result<Vec<Volume>>;
    /// `/VolumeDriver.Capabilities`.
    fn scope(&self) -> Scope {
        Scope::Local
    }
}
