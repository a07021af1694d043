//! What the OCI resource numbers mean, independent of the cgroup version:
//! validation, "unlimited" spellings, and the v1-to-v2 conversions (cpu
//! shares to weight, blkio weight to io weight, memory+swap to swap).
//! Pure functions; the v1 and v2 modules write the results.

use oci_spec::runtime::{LinuxMemory, LinuxRdma};

use super::CgroupError;

/// A limit that is either a number or no limit at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Max,
    Value(u64),
}

impl Limit {
    /// v1 spelling: `-1` for no limit.
    pub(crate) fn v1(self) -> String {
        match self {
            Limit::Max => "-1".to_string(),
            Limit::Value(v) => v.to_string(),
        }
    }

    /// v2 spelling: `max` for no limit.
    pub(crate) fn v2(self) -> String {
        match self {
            Limit::Max => "max".to_string(),
            Limit::Value(v) => v.to_string(),
        }
    }
}

/// An OCI byte count: absent or 0 means "leave alone", -1 means unlimited,
/// anything else below zero is an error.
fn bytes(resource: &'static str, value: Option<i64>) -> Result<Option<Limit>, CgroupError> {
    match value {
        None | Some(0) => Ok(None),
        Some(-1) => Ok(Some(Limit::Max)),
        Some(v) if v > 0 => Ok(Some(Limit::Value(v as u64))),
        Some(v) => Err(CgroupError::InvalidResource {
            resource,
            reason: format!("{v} is neither a byte count nor -1 (unlimited)"),
        }),
    }
}

/// The memory limits of an OCI `memory` block, checked for consistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct MemoryLimits {
    pub(crate) limit: Option<Limit>,
    /// Memory plus swap, as OCI and v1 count it.
    pub(crate) swap: Option<Limit>,
    pub(crate) reservation: Option<Limit>,
}

impl MemoryLimits {
    pub(crate) fn from_oci(memory: &LinuxMemory) -> Result<Self, CgroupError> {
        let limit = bytes("memory.limit", memory.limit())?;
        let reservation = bytes("memory.reservation", memory.reservation())?;
        let swap = match (bytes("memory.swap", memory.swap())?, limit) {
            // An unlimited memory limit with swap left alone means both
            // unlimited, as on v1 where memsw would otherwise cap memory.
            (None, Some(Limit::Max)) => Some(Limit::Max),
            (Some(Limit::Value(total)), Some(Limit::Value(mem))) if total < mem => {
                return Err(CgroupError::InvalidResource {
                    resource: "memory.swap",
                    reason: format!("memory+swap {total} is below the memory limit {mem}"),
                })
            }
            (Some(Limit::Value(total)), None | Some(Limit::Max)) => {
                return Err(CgroupError::InvalidResource {
                    resource: "memory.swap",
                    reason: format!("a memory+swap limit ({total}) needs a memory limit"),
                })
            }
            (swap, _) => swap,
        };
        Ok(MemoryLimits { limit, swap, reservation })
    }

    /// Whether the swap request holds without swap accounting: no swap
    /// limit at all, or memory+swap equal to memory (no swap).
    pub(crate) fn swap_needs_accounting(&self) -> bool {
        match (self.swap, self.limit) {
            (None | Some(Limit::Max), _) => false,
            (Some(Limit::Value(total)), Some(Limit::Value(mem))) => total != mem,
            (Some(Limit::Value(_)), _) => true,
        }
    }

    /// v2 `memory.swap.max`: swap alone, memory+swap minus memory.
    pub(crate) fn v2_swap_max(&self) -> Option<Limit> {
        match (self.swap?, self.limit) {
            (Limit::Value(total), Some(Limit::Value(mem))) => Some(Limit::Value(total.saturating_sub(mem))),
            _ => Some(Limit::Max),
        }
    }
}

/// The kernel's range for v1 `cpu.shares` (MIN_SHARES, MAX_SHARES).
const SHARES_MIN: u64 = 2;
const SHARES_MAX: u64 = 262_144;
/// The kernel's range for v2 `cpu.weight` (CGROUP_WEIGHT_MIN/MAX).
const WEIGHT_MAX: u64 = 10_000;

/// v1 `cpu.shares` to v2 `cpu.weight`, mapping [2, 262144] linearly onto
/// [1, 10000] the way runc and crun do, so that a spec means the same on
/// both versions.
pub(crate) fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(SHARES_MIN, SHARES_MAX);
    1 + ((shares - SHARES_MIN) * (WEIGHT_MAX - 1)) / (SHARES_MAX - SHARES_MIN)
}

/// v1 `blkio.weight` range.
const BLKIO_WEIGHT_MIN: u64 = 10;
const BLKIO_WEIGHT_MAX: u64 = 1000;

/// v1 `blkio.weight` [10, 1000] to v2 `io.weight` [1, 10000].
pub(crate) fn io_weight(blkio_weight: u16) -> u64 {
    let w = u64::from(blkio_weight).clamp(BLKIO_WEIGHT_MIN, BLKIO_WEIGHT_MAX);
    1 + ((w - BLKIO_WEIGHT_MIN) * (WEIGHT_MAX - 1)) / (BLKIO_WEIGHT_MAX - BLKIO_WEIGHT_MIN)
}

/// `pids.max`: a positive limit, or no limit for zero and below (OCI says
/// -1; runc treats 0 the same way).
pub(crate) fn pids_max(limit: i64) -> Limit {
    if limit > 0 {
        Limit::Value(limit as u64)
    } else {
        Limit::Max
    }
}

/// A CFS quota: absent or 0 leaves it alone, negative means unlimited.
pub(crate) fn cpu_quota(quota: Option<i64>) -> Option<Limit> {
    match quota {
        None | Some(0) => None,
        Some(q) if q < 0 => Some(Limit::Max),
        Some(q) => Some(Limit::Value(q as u64)),
    }
}

/// v2 `cpu.max` ("QUOTA PERIOD", "max PERIOD", or a quota alone, which
/// keeps the period), when the spec sets either.
pub(crate) fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let period = period.filter(|p| *p != 0);
    let quota = cpu_quota(quota);
    match (quota, period) {
        (None, None) => None,
        (quota, None) => quota.map(Limit::v2),
        (quota, Some(p)) => Some(format!("{} {p}", quota.unwrap_or(Limit::Max).v2())),
    }
}

/// A hugepage size as it appears in control file names (`2MB`, `1GB`).
pub(crate) fn hugepage_size(size: &str) -> Result<&str, CgroupError> {
    let well_formed = !size.is_empty() && size.chars().all(|c| c.is_ascii_alphanumeric());
    if well_formed {
        Ok(size)
    } else {
        Err(CgroupError::InvalidResource {
            resource: "hugepageLimits",
            reason: format!("page size {size:?} is not like 2MB or 1GB"),
        })
    }
}

/// `MAJOR:MINOR` of a block device in blkio/io files.
pub(crate) fn device_pair(major: i64, minor: i64) -> Result<String, CgroupError> {
    match (u32::try_from(major), u32::try_from(minor)) {
        (Ok(major), Ok(minor)) => Ok(format!("{major}:{minor}")),
        _ => Err(CgroupError::InvalidResource {
            resource: "blockIO",
            reason: format!("{major}:{minor} is not a device number"),
        }),
    }
}

/// The `rdma.max` line for `device`, or `None` when the spec limits
/// nothing.
pub(crate) fn rdma_line(device: &str, rdma: &LinuxRdma) -> Result<Option<String>, CgroupError> {
    if device.is_empty() || device.contains(char::is_whitespace) {
        return Err(CgroupError::InvalidResource {
            resource: "rdma",
            reason: format!("device name {device:?}"),
        });
    }
    let mut line = device.to_string();
    if let Some(handles) = rdma.hca_handles() {
        line.push_str(&format!(" hca_handle={handles}"));
    }
    if let Some(objects) = rdma.hca_objects() {
        line.push_str(&format!(" hca_object={objects}"));
    }
    Ok((line.len() > device.len()).then_some(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(limit: Option<i64>, swap: Option<i64>) -> LinuxMemory {
        let mut m = LinuxMemory::default();
        m.set_limit(limit).set_swap(swap);
        m
    }

    #[test]
    fn memory_limits_and_swap() {
        let m = MemoryLimits::from_oci(&memory(Some(100), Some(300))).unwrap();
        assert_eq!(m.limit, Some(Limit::Value(100)));
        assert_eq!(m.swap, Some(Limit::Value(300)));
        assert_eq!(m.v2_swap_max(), Some(Limit::Value(200)));
        assert!(m.swap_needs_accounting());

        let no_swap = MemoryLimits::from_oci(&memory(Some(100), Some(100))).unwrap();
        assert_eq!(no_swap.v2_swap_max(), Some(Limit::Value(0)));
        assert!(!no_swap.swap_needs_accounting());

        let unlimited = MemoryLimits::from_oci(&memory(Some(-1), None)).unwrap();
        assert_eq!((unlimited.limit, unlimited.swap), (Some(Limit::Max), Some(Limit::Max)));
        assert_eq!(unlimited.v2_swap_max(), Some(Limit::Max));
        assert!(!unlimited.swap_needs_accounting());

        let swap_max = MemoryLimits::from_oci(&memory(Some(100), Some(-1))).unwrap();
        assert_eq!(swap_max.v2_swap_max(), Some(Limit::Max));

        let untouched = MemoryLimits::from_oci(&memory(Some(100), None)).unwrap();
        assert_eq!((untouched.swap, untouched.v2_swap_max()), (None, None));
        assert_eq!(MemoryLimits::from_oci(&memory(Some(0), Some(0))).unwrap(), MemoryLimits::default());
    }

    #[test]
    fn inconsistent_memory_is_refused() {
        for (limit, swap) in [(Some(100), Some(50)), (None, Some(50)), (Some(-1), Some(50)), (Some(-2), None)] {
            assert!(MemoryLimits::from_oci(&memory(limit, swap)).is_err(), "{limit:?} {swap:?}");
        }
        let mut m = LinuxMemory::default();
        m.set_reservation(Some(-5));
        assert!(MemoryLimits::from_oci(&m).is_err());
    }

    #[test]
    fn shares_to_weight_like_runc() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert_eq!(cpu_weight(0), 1, "clamped");
        assert_eq!(cpu_weight(1 << 40), 10_000, "clamped");
    }

    #[test]
    fn blkio_weight_to_io_weight() {
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(500), 4_950);
        assert_eq!(io_weight(1000), 10_000);
    }

    #[test]
    fn cpu_max_spellings() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(0), Some(0)), None);
        assert_eq!(cpu_max(Some(50_000), Some(100_000)).as_deref(), Some("50000 100000"));
        assert_eq!(cpu_max(Some(-1), Some(100_000)).as_deref(), Some("max 100000"));
        assert_eq!(cpu_max(None, Some(20_000)).as_deref(), Some("max 20000"));
        assert_eq!(cpu_max(Some(50_000), None).as_deref(), Some("50000"));
    }

    #[test]
    fn names_in_control_files() {
        assert_eq!(hugepage_size("2MB").unwrap(), "2MB");
        assert!(hugepage_size("../x").is_err() && hugepage_size("").is_err());
        assert_eq!(device_pair(8, 16).unwrap(), "8:16");
        assert!(device_pair(-1, 0).is_err());
        assert_eq!(rdma_line("mlx4_0", &LinuxRdma::default()).unwrap(), None);
        let rdma: LinuxRdma = serde_json::from_str(r#"{"hcaHandles": 2, "hcaObjects": 2000}"#).unwrap();
        assert_eq!(
            rdma_line("mlx4_0", &rdma).unwrap().as_deref(),
            Some("mlx4_0 hca_handle=2 hca_object=2000")
        );
        assert!(rdma_line("a b", &rdma).is_err());
    }

    #[test]
    fn pids_and_limit_spellings() {
        assert_eq!(pids_max(10).v2(), "10");
        assert_eq!(pids_max(0).v2(), "max");
        assert_eq!(pids_max(-1).v1(), "-1");
    }
}
