//! vfsgraph: a storage (graph) driver plugin: berth's own `vfs` driver
//! (each layer a full copy of its parent) exported as a loadable plugin,
//! layers kept under the plugin's home. Start berthd with
//! `--storage-driver vfsgraph` to keep images and containers in it.

use berth_plugin::Served;

berth_plugin::export_plugin!(
    Served::new("vfsgraph").graph(|home: &std::path::Path| berth_fs::graph::vfs::VfsDriver::new(home.join("layers")))
);
