//! Writes the OCI `linux.resources` to the v1 hierarchies, each to the
//! hierarchy of its controller. A resource whose controller is not mounted
//! is an error, not a silent no-op; a resource the spec leaves out (or sets
//! to 0, OCI's "unset") is not written at all.
//!
//! Ignored on purpose: `memory.kernel` (kernel memory limits are gone since
//! Linux 5.4 and deprecated in OCI), `memory.useHierarchy` and
//! `memory.checkBeforeUpdate` (always hierarchical on current kernels;
//! updates are not this module's job yet).

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources};

use super::V1Cgroup;
use crate::runtime::cgroups::limits::{self, Limit, MemoryLimits};
use crate::runtime::cgroups::{cgroupfs, devices, CgroupError, CgroupVersion};

/// Writes `value` to `file` in the directory of `controller`'s hierarchy.
fn set(cgroup: &V1Cgroup, controller: &str, resource: &'static str, file: &str, value: &str) -> Result<(), CgroupError> {
    cgroupfs::write(&cgroup.require(controller, resource)?.join(file), value)
}

/// Applies the device rules (always: the defaults when there is no spec)
/// and every resource the spec sets.
pub(super) fn apply(cgroup: &V1Cgroup, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
    let spec_rules = resources.and_then(|r| r.devices().as_deref()).unwrap_or(&[]);
    let rules = devices::effective_rules(spec_rules)?;
    devices::apply_v1(cgroup.require("devices", "device rules")?, &rules)?;

    let Some(r) = resources else {
        return Ok(());
    };
    update(cgroup, r)?;
    for hugepage in r.hugepage_limits().iter().flatten() {
        let size = limits::hugepage_size(hugepage.page_size())?;
        let file = format!("hugetlb.{size}.limit_in_bytes");
        set(cgroup, "hugetlb", "hugepageLimits", &file, &hugepage.limit().to_string())?;
    }
    if let Some(b) = r.block_io() {
        block_io(cgroup, b)?;
    }
    if let Some(n) = r.network() {
        network(cgroup, n)?;
    }
    for (device, rdma) in r.rdma().iter().flatten() {
        if let Some(line) = limits::rdma_line(device, rdma)? {
            set(cgroup, "rdma", "rdma", "rdma.max", &line)?;
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Unsupported {
            resource: "unified",
            version: CgroupVersion::V1,
        });
    }
    Ok(())
}

/// Memory limits. The kernel keeps memory+swap at or above memory at every
/// moment, so the order of the two writes depends on where the limits go.
pub(super) fn memory(cgroup: &V1Cgroup, memory: &LinuxMemory) -> Result<(), CgroupError> {
    let wanted = MemoryLimits::from_oci(memory)?;
    let resource = "memory";
    if let Some(reservation) = wanted.reservation {
        set(cgroup, "memory", resource, "memory.soft_limit_in_bytes", &reservation.v1())?;
    }
    if wanted.limit.is_some() || wanted.swap.is_some() {
        limit_and_swap(cgroup, &wanted, memory.swap().unwrap_or(0))?;
    }
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(CgroupError::InvalidResource {
                resource: "memory.swappiness",
                reason: format!("{swappiness} is not between 0 and 100"),
            });
        }
        set(cgroup, "memory", resource, "memory.swappiness", &swappiness.to_string())?;
    }
    if let Some(disable) = memory.disable_oom_killer() {
        set(cgroup, "memory", resource, "memory.oom_control", if disable { "1" } else { "0" })?;
    }
    if let Some(tcp) = memory.kernel_tcp().filter(|v| *v != 0) {
        set(cgroup, "memory", resource, "memory.kmem.tcp.limit_in_bytes", &tcp.to_string())?;
    }
    Ok(())
}

fn limit_and_swap(cgroup: &V1Cgroup, wanted: &MemoryLimits, spec_swap: i64) -> Result<(), CgroupError> {
    let dir = cgroup.require("memory", "memory")?;
    let limit_file = dir.join("memory.limit_in_bytes");
    let swap_file = dir.join("memory.memsw.limit_in_bytes");
    let swap = match wanted.swap {
        // Without swap accounting there is no memsw file. That is fine as
        // long as the spec asks for no swap limit (or for no swap at all).
        Some(_) if !swap_file.exists() => {
            if wanted.swap_needs_accounting() {
                return Err(CgroupError::SwapUnsupported {
                    swap: spec_swap,
                    path: swap_file,
                });
            }
            None
        }
        swap => swap,
    };
    let write_limit = |limit: Limit| cgroupfs::write(&limit_file, &limit.v1());
    let write_swap = |swap: Limit| cgroupfs::write(&swap_file, &swap.v1());
    match (wanted.limit, swap) {
        (Some(limit), Some(swap)) => {
            let current = cgroupfs::read(&limit_file)?;
            let current: u64 = current.trim().parse().map_err(|_| CgroupError::Parse {
                path: limit_file.clone(),
                content: current.clone(),
            })?;
            // Raising memory+swap above the current memory limit is always
            // allowed, and then any memory limit under it; otherwise lower
            // memory first, which keeps it under both old and new swap.
            let swap_first = match swap {
                Limit::Max => true,
                Limit::Value(v) => v >= current,
            };
            if swap_first {
                write_swap(swap)?;
                write_limit(limit)
            } else {
                write_limit(limit)?;
                write_swap(swap)
            }
        }
        (Some(limit), None) => write_limit(limit),
        (None, Some(swap)) => write_swap(swap),
        (None, None) => Ok(()),
    }
}

fn cpu(cgroup: &V1Cgroup, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    let cpu_set = |file: &str, value: String| set(cgroup, "cpu", "cpu", file, &value);
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        cpu_set("cpu.shares", shares.to_string())?;
    }
    // Period before quota: a fresh cgroup has no quota, so any period is
    // accepted, and the quota is then checked against the new period.
    if let Some(period) = cpu.period().filter(|p| *p != 0) {
        cpu_set("cpu.cfs_period_us", period.to_string())?;
    }
    if let Some(quota) = limits::cpu_quota(cpu.quota()) {
        cpu_set("cpu.cfs_quota_us", quota.v1())?;
    }
    if let Some(burst) = cpu.burst() {
        cpu_set("cpu.cfs_burst_us", burst.to_string())?;
    }
    if let Some(period) = cpu.realtime_period().filter(|p| *p != 0) {
        cpu_set("cpu.rt_period_us", period.to_string())?;
    }
    if let Some(runtime) = cpu.realtime_runtime().filter(|r| *r != 0) {
        cpu_set("cpu.rt_runtime_us", runtime.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        cpu_set("cpu.idle", idle.to_string())?;
    }
    for (file, value) in [("cpuset.cpus", cpu.cpus()), ("cpuset.mems", cpu.mems())] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            set(cgroup, "cpuset", "cpu.cpus/mems", file, value)?;
        }
    }
    Ok(())
}

fn block_io(cgroup: &V1Cgroup, io: &LinuxBlockIo) -> Result<(), CgroupError> {
    let resource = "blockIO";
    let dir = || cgroup.require("blkio", resource);
    // CFQ's files are gone on current kernels; BFQ offers the same weights.
    let weight_file =
        |cfq: &str, bfq: &str| -> Result<String, CgroupError> { Ok(if dir()?.join(cfq).exists() { cfq } else { bfq }.to_string()) };
    if let Some(weight) = io.weight() {
        let file = weight_file("blkio.weight", "blkio.bfq.weight")?;
        set(cgroup, "blkio", resource, &file, &weight.to_string())?;
    }
    if let Some(weight) = io.leaf_weight() {
        set(cgroup, "blkio", resource, "blkio.leaf_weight", &weight.to_string())?;
    }
    for device in io.weight_device().iter().flatten() {
        let number = limits::device_pair(device.major(), device.minor())?;
        if let Some(weight) = device.weight() {
            let file = weight_file("blkio.weight_device", "blkio.bfq.weight_device")?;
            set(cgroup, "blkio", resource, &file, &format!("{number} {weight}"))?;
        }
        if let Some(weight) = device.leaf_weight() {
            set(cgroup, "blkio", resource, "blkio.leaf_weight_device", &format!("{number} {weight}"))?;
        }
    }
    let throttles = [
        ("blkio.throttle.read_bps_device", io.throttle_read_bps_device()),
        ("blkio.throttle.write_bps_device", io.throttle_write_bps_device()),
        ("blkio.throttle.read_iops_device", io.throttle_read_iops_device()),
        ("blkio.throttle.write_iops_device", io.throttle_write_iops_device()),
    ];
    for (file, devices) in throttles {
        for device in devices.iter().flatten() {
            let number = limits::device_pair(device.major(), device.minor())?;
            set(cgroup, "blkio", resource, file, &format!("{number} {}", device.rate()))?;
        }
    }
    Ok(())
}

fn network(cgroup: &V1Cgroup, network: &LinuxNetwork) -> Result<(), CgroupError> {
    if let Some(class_id) = network.class_id() {
        set(cgroup, "net_cls", "network.classID", "net_cls.classid", &class_id.to_string())?;
    }
    for priority in network.priorities().iter().flatten() {
        let line = format!("{} {}", priority.name(), priority.priority());
        set(cgroup, "net_prio", "network.priorities", "net_prio.ifpriomap", &line)?;
    }
    Ok(())
}
/// Changes the memory, CPU and pids limits of a running container
/// (`update`); device rules and the rest stay as created.
pub(super) fn update(cgroup: &V1Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(m) = r.memory() {
        memory(cgroup, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cgroup, c)?;
    }
    if let Some(p) = r.pids() {
        // pids.max spells "no limit" as on v2.
        set(cgroup, "pids", "pids.limit", "pids.max", &limits::pids_max(p.limit()).v2())?;
    }
    Ok(())
}
