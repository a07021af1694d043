//! The graph (storage) driver interface: how image layers and container
//! writable layers become directories.
//!
//! The operations mirror Docker's graph-driver plugin protocol
//! (`/GraphDriver.Create`, `CreateReadWrite`, `Remove`, `Get`, `Put`,
//! `Exists`, `Status`, `Cleanup`, `ApplyDiff`): a driver knows how its
//! layers hold files, so it is the one that unpacks a layer tarball.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Request body of `/GraphDriver.Create` and `.CreateReadWrite`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    #[serde(rename = "ID")]
    pub id: String,
    /// The layer this one stacks on, empty for a base layer.
    #[serde(default)]
    pub parent: String,
    #[serde(default)]
    pub mount_label: String,
}

/// What `/GraphDriver.ApplyDiff` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Applied {
    /// `sha256:<hex>` of the uncompressed tarball (the layer's diffID).
    #[serde(rename = "DiffID")]
    pub diff_id: String,
    /// Size of the uncompressed tarball.
    pub size: u64,
}

/// A graph driver. Implementations must be safe to call concurrently.
pub trait GraphDriver: Send + Sync {
    /// Creates a read-only (image) layer on `parent`.
    fn create(&self, req: &CreateRequest) -> Result<()>;
    /// Creates a writable (container) layer on `parent`.
    fn create_read_write(&self, req: &CreateRequest) -> Result<()>;
    /// Removes a layer and everything the driver keeps for it.
    fn remove(&self, id: &str) -> Result<()>;
    /// Mounts the layer with its parents and returns the merged directory;
    /// calls nest, each paired with one [`GraphDriver::put`].
    fn get(&self, id: &str, mount_label: &str) -> Result<PathBuf>;
    /// Releases one [`GraphDriver::get`].
    fn put(&self, id: &str) -> Result<()>;
    /// Whether the driver holds layer `id`.
    fn exists(&self, id: &str) -> bool;
    /// Key/value facts shown by `berth info`.
    fn status(&self) -> Vec<(String, String)>;
    /// Unmounts everything; called when the engine stops.
    fn cleanup(&self) -> Result<()>;
    /// Unpacks a layer tarball (plain, gzip or zstd; OCI whiteouts) into
    /// the freshly created layer `id`, which must not be mounted. On an
    /// error the layer is left as created, empty of this tarball's files
    /// where the driver can promise that, else to be removed by the caller.
    fn apply_diff(&self, id: &str, tarball: &mut dyn std::io::Read) -> Result<Applied>;
}
