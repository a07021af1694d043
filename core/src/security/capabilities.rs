//! Linux capabilities: translating the OCI capability sets and applying
//! them to the container process.

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

/// Docker's default capability set (moby `daemon/pkg/oci/caps/defaults.go`):
/// what an unprivileged container keeps.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The five sets, resolved to capabilities this kernel knows. Names the
/// kernel does not support are dropped, as runc does.
#[derive(Debug, Clone, Default)]
pub struct CapabilitySets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

fn convert(set: Option<&oci_spec::runtime::Capabilities>, supported: &CapsHashSet) -> Result<CapsHashSet, String> {
    let mut out = CapsHashSet::new();
    for cap in set.into_iter().flatten() {
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let c: Capability = name.parse().map_err(|_| format!("unknown capability {name}"))?;
        if supported.contains(&c) {
            out.insert(c);
        }
    }
    Ok(out)
}

impl CapabilitySets {
    /// Resolves the OCI sets; a missing `capabilities` section means none.
    pub fn from_spec(spec: Option<&LinuxCapabilities>) -> Result<Self, String> {
        let supported = caps::runtime::thread_all_supported();
        let Some(s) = spec else { return Ok(Self::default()) };
        Ok(CapabilitySets {
            bounding: convert(s.bounding().as_ref(), &supported)?,
            effective: convert(s.effective().as_ref(), &supported)?,
            permitted: convert(s.permitted().as_ref(), &supported)?,
            inheritable: convert(s.inheritable().as_ref(), &supported)?,
            ambient: convert(s.ambient().as_ref(), &supported)?,
        })
    }

    /// Drops from the bounding set every capability not in it. Needs
    /// CAP_SETPCAP, so it runs before the user switch.
    pub fn apply_bounding(&self) -> Result<(), String> {
        for cap in caps::runtime::thread_all_supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(|e| format!("drop {cap} from the bounding set: {e}"))?;
            }
        }
        Ok(())
    }

    /// Sets permitted, inheritable, effective and then raises ambient.
    pub fn apply_process_sets(&self) -> Result<(), String> {
        caps::set(
            None,
            CapSet::Effective,
            &self.effective.intersection(&self.permitted).copied().collect(),
        )
        .and_then(|_| caps::set(None, CapSet::Permitted, &self.permitted))
        .and_then(|_| caps::set(None, CapSet::Inheritable, &self.inheritable))
        .and_then(|_| caps::set(None, CapSet::Effective, &self.effective))
        .map_err(|e| format!("set capabilities: {e}"))?;
        // Ambient capabilities must be permitted and inheritable; raise only those.
        caps::clear(None, CapSet::Ambient).map_err(|e| format!("clear ambient capabilities: {e}"))?;
        for cap in &self.ambient {
            if self.permitted.contains(cap) && self.inheritable.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap).map_err(|e| format!("raise ambient {cap}: {e}"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_oci_names() {
        let spec: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"]
        }))
        .unwrap();
        let s = CapabilitySets::from_spec(Some(&spec)).unwrap();
        assert!(s.bounding.contains(&Capability::CAP_CHOWN));
        assert_eq!(s.effective.len(), 1);
        assert!(s.permitted.is_empty());
        for name in DOCKER_DEFAULT {
            assert!(name.parse::<Capability>().is_ok(), "{name}");
        }
    }
}
