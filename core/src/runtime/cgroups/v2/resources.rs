//! Writes the OCI `linux.resources` to a v2 cgroup, converting the v1
//! numbers OCI uses (cpu shares, blkio weights, memory+swap) as runc does,
//! then the `unified` entries, which therefore win over converted values.
//!
//! Ignored on purpose, having no v2 equivalent: `memory.swappiness`,
//! `memory.disableOOMKiller`, `memory.kernel`, `memory.kernelTCP`,
//! `memory.useHierarchy`. Refused as unsupported: real-time CPU
//! scheduling, `blockIO.leafWeight`, `network` (v1 net_cls/net_prio only).

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::V2Cgroup;
use crate::runtime::cgroups::limits::{self, Limit, MemoryLimits};
use crate::runtime::cgroups::{cgroupfs, devices, CgroupError, CgroupVersion};

fn set(cgroup: &V2Cgroup, file: &str, value: &str) -> Result<(), CgroupError> {
    cgroupfs::write(&cgroup.directory().join(file), value)
}

fn unsupported(resource: &'static str) -> CgroupError {
    CgroupError::Unsupported {
        resource,
        version: CgroupVersion::V2,
    }
}

fn cpu_needed(cpu: &LinuxCpu) -> bool {
    cpu.shares().is_some_and(|s| s != 0)
        || limits::cpu_max(cpu.quota(), cpu.period()).is_some()
        || cpu.burst().is_some()
        || cpu.idle().is_some()
}

fn io_needed(io: &LinuxBlockIo) -> bool {
    io.weight().is_some()
        || io.weight_device().as_ref().is_some_and(|d| !d.is_empty())
        || [
            io.throttle_read_bps_device(),
            io.throttle_write_bps_device(),
            io.throttle_read_iops_device(),
            io.throttle_write_iops_device(),
        ]
        .iter()
        .any(|d| d.as_ref().is_some_and(|d| !d.is_empty()))
}

/// The controllers `resources` need, as `(resource, controller)` pairs.
pub(super) fn controllers_needed(resources: Option<&LinuxResources>) -> Vec<(&'static str, String)> {
    let Some(r) = resources else {
        return Vec::new();
    };
    let mut needed = Vec::new();
    let mut need = |resource, controller: &str| needed.push((resource, controller.to_string()));
    if let Some(memory) = r.memory() {
        if MemoryLimits::from_oci(memory).is_ok_and(|m| m != MemoryLimits::default()) {
            need("memory", "memory");
        }
    }
    if let Some(cpu) = r.cpu() {
        if cpu_needed(cpu) {
            need("cpu", "cpu");
        }
        if [cpu.cpus(), cpu.mems()].iter().any(|s| s.as_ref().is_some_and(|s| !s.is_empty())) {
            need("cpu.cpus/mems", "cpuset");
        }
    }
    if r.pids().is_some() {
        need("pids", "pids");
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        need("hugepageLimits", "hugetlb");
    }
    if r.block_io().as_ref().is_some_and(io_needed) {
        need("blockIO", "io");
    }
    if r.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        need("rdma", "rdma");
    }
    for key in r.unified().iter().flat_map(|u| u.keys()) {
        match key.split_once('.') {
            Some((controller, _)) if controller != "cgroup" => need("unified", controller),
            _ => {}
        }
    }
    needed
}

/// Applies the device rules (always: the defaults when there is no spec)
/// and every resource the spec sets.
pub(super) fn apply(cgroup: &V2Cgroup, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
    let spec_rules = resources.and_then(|r| r.devices().as_deref()).unwrap_or(&[]);
    devices::apply_v2(cgroup.directory(), &devices::effective_rules(spec_rules)?)?;

    let Some(r) = resources else {
        return Ok(());
    };
    update(cgroup, r)?;
    for hugepage in r.hugepage_limits().iter().flatten() {
        let size = limits::hugepage_size(hugepage.page_size())?;
        let limit = match hugepage.limit() {
            l if l < 0 => Limit::Max,
            l => Limit::Value(l as u64),
        };
        set(cgroup, &format!("hugetlb.{size}.max"), &limit.v2())?;
    }
    if let Some(b) = r.block_io() {
        block_io(cgroup, b)?;
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(unsupported("network"));
        }
    }
    for (device, rdma) in r.rdma().iter().flatten() {
        if let Some(line) = limits::rdma_line(device, rdma)? {
            set(cgroup, "rdma.max", &line)?;
        }
    }
    for (key, value) in r.unified().iter().flatten() {
        let plain_name = key.contains('.') && !key.contains('/') && !key.starts_with('.');
        if !plain_name {
            return Err(CgroupError::InvalidResource {
                resource: "unified",
                reason: format!("{key:?} is not a cgroup file name like memory.high"),
            });
        }
        set(cgroup, key, value)?;
    }
    Ok(())
}

fn memory(cgroup: &V2Cgroup, memory: &LinuxMemory) -> Result<(), CgroupError> {
    let wanted = MemoryLimits::from_oci(memory)?;
    if let Some(limit) = wanted.limit {
        set(cgroup, "memory.max", &limit.v2())?;
    }
    if let Some(swap) = wanted.v2_swap_max() {
        let file = cgroup.directory().join("memory.swap.max");
        if file.exists() {
            cgroupfs::write(&file, &swap.v2())?;
        } else if wanted.swap_needs_accounting() {
            return Err(CgroupError::SwapUnsupported {
                swap: memory.swap().unwrap_or(0),
                path: file,
            });
        }
    }
    if let Some(reservation) = wanted.reservation {
        set(cgroup, "memory.low", &reservation.v2())?;
    }
    Ok(())
}

fn cpu(cgroup: &V2Cgroup, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if cpu.realtime_runtime().is_some_and(|r| r != 0) || cpu.realtime_period().is_some_and(|p| p != 0) {
        return Err(unsupported("cpu.realtimeRuntime/realtimePeriod"));
    }
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        set(cgroup, "cpu.weight", &limits::cpu_weight(shares).to_string())?;
    }
    if let Some(max) = limits::cpu_max(cpu.quota(), cpu.period()) {
        set(cgroup, "cpu.max", &max)?;
    }
    if let Some(burst) = cpu.burst() {
        set(cgroup, "cpu.max.burst", &burst.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        set(cgroup, "cpu.idle", &idle.to_string())?;
    }
    for (file, value) in [("cpuset.cpus", cpu.cpus()), ("cpuset.mems", cpu.mems())] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            set(cgroup, file, value)?;
        }
    }
    Ok(())
}

fn block_io(cgroup: &V2Cgroup, io: &LinuxBlockIo) -> Result<(), CgroupError> {
    if io.leaf_weight().is_some() || io.weight_device().iter().flatten().any(|d| d.leaf_weight().is_some()) {
        return Err(unsupported("blockIO.leafWeight"));
    }
    // BFQ takes blkio's own weight range; io.weight needs it converted.
    let bfq = cgroup.directory().join("io.bfq.weight").exists();
    let weight = |w: u16| -> (&str, String) {
        if bfq {
            ("io.bfq.weight", w.to_string())
        } else {
            ("io.weight", limits::io_weight(w).to_string())
        }
    };
    if let Some(w) = io.weight() {
        let (file, value) = weight(w);
        set(cgroup, file, &format!("default {value}"))?;
    }
    for device in io.weight_device().iter().flatten() {
        if let Some(w) = device.weight() {
            let number = limits::device_pair(device.major(), device.minor())?;
            let (file, value) = weight(w);
            set(cgroup, file, &format!("{number} {value}"))?;
        }
    }
    let throttles = [
        ("rbps", io.throttle_read_bps_device()),
        ("wbps", io.throttle_write_bps_device()),
        ("riops", io.throttle_read_iops_device()),
        ("wiops", io.throttle_write_iops_device()),
    ];
    for (key, devices) in throttles {
        for device in devices.iter().flatten() {
            let number = limits::device_pair(device.major(), device.minor())?;
            // v1 removes a throttle with 0; v2 spells that "max".
            let rate = match device.rate() {
                0 => Limit::Max,
                r => Limit::Value(r),
            };
            set(cgroup, "io.max", &format!("{number} {key}={}", rate.v2()))?;
        }
    }
    Ok(())
}

/// Changes the memory, CPU and pids limits of a running container
/// (`update`); device rules and the rest stay as created.
pub(super) fn update(cgroup: &V2Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(m) = r.memory() {
        memory(cgroup, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cgroup, c)?;
    }
    if let Some(p) = r.pids() {
        set(cgroup, "pids.max", &limits::pids_max(p.limit()).v2())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpu, LinuxPids};
    use std::collections::HashMap;

    #[test]
    fn controllers_follow_the_resources_set() {
        assert!(controllers_needed(None).is_empty());
        let mut r = LinuxResources::default();
        r.set_cpu(Some(LinuxCpu::default())).set_memory(Some(LinuxMemory::default()));
        assert!(controllers_needed(Some(&r)).is_empty(), "empty blocks need nothing");

        let mut cpu = LinuxCpu::default();
        cpu.set_shares(Some(1024)).set_cpus(Some("0".into()));
        let mut memory = LinuxMemory::default();
        memory.set_limit(Some(1 << 30));
        r.set_cpu(Some(cpu))
            .set_memory(Some(memory))
            .set_pids(Some(LinuxPids::default()))
            .set_unified(Some(HashMap::from([
                ("io.latency".to_string(), "x".to_string()),
                ("cgroup.max.depth".to_string(), "4".to_string()),
            ])));
        let controllers: Vec<String> = controllers_needed(Some(&r)).into_iter().map(|(_, c)| c).collect();
        assert_eq!(controllers, ["memory", "cpu", "cpuset", "pids", "io"]);
    }
}
