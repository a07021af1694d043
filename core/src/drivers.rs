//! Assembles the driver registry from the built-in drivers of `berth-fs`
//! and `berth-net` (loaded plugins join it later, through the same calls).

use std::path::Path;

use berth_plugin::Registry;

/// A registry holding every built-in driver, storage drivers keeping their
/// data under `data_root`.
pub fn builtin_registry(data_root: &Path, cluster: Option<&berth_net::overlay::Cluster>) -> berth_plugin::error::Result<Registry> {
    let mut registry = Registry::new();
    berth_fs::register_builtin(&mut registry, data_root)?;
    berth_net::register_builtin(&mut registry, &data_root.join("networks"), cluster)?;
    Ok(registry)
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_drivers_are_registered() {
        let dir = tempfile::tempdir().unwrap();
        let r = super::builtin_registry(dir.path(), None).unwrap();
        assert!(r.network("null").is_ok());
        assert!(r.network("bridge").is_ok());
        assert!(r.network("host").is_ok());
        assert!(r.graph("overlay").is_ok());
        assert!(r.graph("vfs").is_ok());
        assert!(r.graph("fuse-union").is_ok());
        assert!(
            r.graph(berth_fs::graph::DEFAULT_GRAPH_DRIVER).is_ok(),
            "the default graph driver is built in"
        );
        assert!(dir.path().join("overlay").is_dir());
    }
}
