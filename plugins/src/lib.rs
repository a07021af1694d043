//! berth-plugin: the contract between berth and its drivers.
//!
//! This crate owns the driver interfaces (graph/storage, volume, network, IPAM), the
//! JSON message types of Docker's plugin protocol that those interfaces speak,
//! and the [`Registry`] through which every driver, built-in or loaded, is
//! found by name. It holds no engine code: `berth-fs` and `berth-net`
//! implement the traits, `berth-core` owns a registry and drives it.

pub mod abi;
pub mod error;
pub mod graph;
pub mod http;
pub mod ipam;
pub mod network;
pub mod protocol;
pub mod registry;
pub mod sdk;
pub mod volume;

pub use error::DriverError;
pub use graph::GraphDriver;
pub use ipam::IpamDriver;
pub use network::NetworkDriver;
pub use registry::{DriverInfo, Interface, Registry, Transport};
pub use sdk::Served;
pub use volume::VolumeDriver;
