//! Assembles the driver registry from the built-in drivers of `berth-fs`
//! and `berth-net` (loaded plugins join it later, through the same calls).

use berth_plugin::Registry;

/// A registry holding every built-in driver.
pub fn builtin_registry() -> berth_plugin::error::Result<Registry> {
    let mut registry = Registry::new();
    berth_fs::register_builtin(&mut registry)?;
    berth_net::register_builtin(&mut registry)?;
    Ok(registry)
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_network_drivers_are_registered() {
        let r = super::builtin_registry().unwrap();
        assert!(r.network("none").is_ok());
        assert!(r.network("host").is_ok());
    }
}
