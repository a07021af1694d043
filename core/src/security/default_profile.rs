//! berth's default hardening for an unprivileged container, as data: the
//! seccomp profile, the masked and read-only paths, and the device cgroup
//! rules, each as the OCI `config.json` fragment the engine puts in a spec.
//!
//! The policy is Docker's, so that an image that runs under Docker's
//! defaults runs under berth's: the seccomp profile follows moby's
//! `profiles/seccomp/default.json` (github.com/moby/profiles/seccomp
//! v0.2.3), the paths and device rules moby's `daemon/pkg/oci/defaults.go`
//! together with the devices runc allows on top. The structure is ours:
//! syscalls grouped by what they are for, and a rule table in which every
//! rule says which containers get it.
//!
//! This module owns the policy only. It does not compile or install the
//! profile ([`super::seccomp`] does), does not choose the capability set
//! ([`super::capabilities::DOCKER_DEFAULT`]), and does not mask paths,
//! create device nodes or program the device cgroup (the runtime's
//! `rootfs` and `cgroups` modules do).
//!
//! # Where berth differs from Docker
//!
//! - `socketcall` is not allowed. It exists only on 32-bit ABIs, where it
//!   would reach `socket(AF_ALG)` past the argument filter on `socket`;
//!   Docker allows it again since profile v0.2.3 and relies on an LSM
//!   instead, which berth does not load.
//! - 32-bit calls (x86, x32, arm) are killed by the seccomp compiler, which
//!   builds code for the native ABI only (see [`super::seccomp`]); the
//!   sub-architectures are listed, and the 32-bit-only names kept in
//!   [`COMPAT_ABIS`], so that the profile stays complete for a compiler that
//!   handles them.
//! - Docker's rule denying the FUSE device (c 10:229) is left out of
//!   [`device_rules`]: the deny-all that starts the list already covers it.

use oci_spec::runtime::LinuxDeviceCgroup;
use serde_json::{json, Value};

use crate::runtime::cgroups::default_device_rules;

// ---- seccomp: syscalls every container may make ----

/// Paths, file contents, directories, links, file metadata.
const FILES: &[&str] = &[
    "access",
    "cachestat",
    "chdir",
    "chmod",
    "chown",
    "close",
    "close_range",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "flock",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futimesat",
    "getcwd",
    "getdents",
    "getdents64",
    "ioctl",
    "lchown",
    "link",
    "linkat",
    "lseek",
    "lstat",
    "mkdir",
    "mkdirat",
    // Device nodes: the device cgroup, not seccomp, decides which can be used.
    "mknod",
    "mknodat",
    "name_to_handle_at",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pread64",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "sendfile",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "tee",
    "truncate",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vmsplice",
    "write",
    "writev",
    // Reading the mount table; changing it is CAP_SYS_ADMIN's (below).
    "listmount",
    "statmount",
];

/// Extended attributes.
const XATTRS: &[&str] = &[
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fsetxattr",
    "getxattr",
    "getxattrat",
    "lgetxattr",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "lremovexattr",
    "lsetxattr",
    "removexattr",
    "removexattrat",
    "setxattr",
    "setxattrat",
];

/// Waiting for file descriptors, and the descriptors made to wait on.
const EVENTS: &[&str] = &[
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "fanotify_mark",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "pselect6",
    "select",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
];

/// Linux native AIO. io_uring is absent on purpose: the operations it runs
/// never pass through seccomp, and Docker denies it since moby 25 (moby
/// commit 891241e7, "block io_uring_* syscalls in default profile").
const ASYNC_IO: &[&str] = &["io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit"];

/// The process's own memory.
const MEMORY: &[&str] = &[
    "brk",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mremap",
    "mseal",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "remap_file_pages",
];

/// Creating, running, waiting for and ending processes and threads.
/// `clone` and `clone3` are in [`RULES`].
const PROCESSES: &[&str] = &[
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "get_robust_list",
    "get_thread_area",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getsid",
    "gettid",
    "pidfd_open",
    "pidfd_send_signal",
    "prctl",
    "process_mrelease",
    "rseq",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setpgid",
    "setsid",
    // x86_64's return-uprobe trampoline; the kernel refuses it outside one.
    "uretprobe",
    "vfork",
    "wait4",
    "waitid",
];

/// Priorities, scheduling, resource limits and usage.
const SCHEDULING: &[&str] = &[
    "getpriority",
    "getrlimit",
    "getrusage",
    "ioprio_get",
    "ioprio_set",
    "prlimit64",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "setpriority",
    "setrlimit",
    "times",
];

/// Sandboxing itself further: a container may always narrow what it can do.
const SELF_RESTRICTION: &[&str] = &["landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "seccomp"];

/// User and group ids and capabilities; the kernel checks CAP_SETUID,
/// CAP_SETGID and CAP_SETPCAP itself.
const CREDENTIALS: &[&str] = &[
    "capget",
    "capset",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getresgid",
    "getresuid",
    "getuid",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setuid",
];

/// Signals.
const SIGNALS: &[&str] = &[
    "kill",
    "pause",
    "restart_syscall",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "tgkill",
    "tkill",
];

/// Clocks, timers and sleeping. Setting the clock needs CAP_SYS_TIME
/// (`adjtimex` and `clock_adjtime` only read without it).
const TIME: &[&str] = &[
    "adjtimex",
    "alarm",
    "clock_adjtime",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "getitimer",
    "gettimeofday",
    "nanosleep",
    "setitimer",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
];

/// Sockets once made; `socket` itself is in [`RULES`].
const NETWORK: &[&str] = &[
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socketpair",
];

/// System V and POSIX IPC (in the container's IPC namespace).
const IPC: &[&str] = &[
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
];

/// What the system is and randomness.
const SYSTEM_INFO: &[&str] = &["getcpu", "getrandom", "sysinfo", "uname"];

/// Names that exist only on 32-bit ABIs (`*32`, `*64`, `*_time64`, the
/// multiplexed `ipc`) or on other architectures (`riscv_hwprobe`), allowed
/// as Docker allows them. Nothing here resolves on x86_64 or aarch64, and
/// the compiler skips them; see the module docs for `socketcall`.
const COMPAT_ABIS: &[&str] = &[
    "_llseek",
    "_newselect",
    "chown32",
    "clock_adjtime64",
    "clock_getres_time64",
    "clock_gettime64",
    "clock_nanosleep_time64",
    "fadvise64_64",
    "fchown32",
    "fcntl64",
    "fstat64",
    "fstatat64",
    "fstatfs64",
    "ftruncate64",
    "futex_time64",
    "getegid32",
    "geteuid32",
    "getgid32",
    "getgroups32",
    "getresgid32",
    "getresuid32",
    "getuid32",
    "io_pgetevents_time64",
    "ipc",
    "lchown32",
    "lstat64",
    "mmap2",
    "mq_timedreceive_time64",
    "mq_timedsend_time64",
    "ppoll_time64",
    "pselect6_time64",
    "recv",
    "recvmmsg_time64",
    "riscv_hwprobe",
    "rt_sigtimedwait_time64",
    "sched_rr_get_interval_time64",
    "semtimedop_time64",
    "send",
    "sendfile64",
    "setfsgid32",
    "setfsuid32",
    "setgid32",
    "setgroups32",
    "setregid32",
    "setresgid32",
    "setresuid32",
    "setreuid32",
    "setuid32",
    "sigprocmask",
    "sigreturn",
    "stat64",
    "statfs64",
    "timer_gettime64",
    "timer_settime64",
    "timerfd_gettime64",
    "timerfd_settime64",
    "truncate64",
    "ugetrlimit",
    "utimensat_time64",
    "waitpid",
];

/// The groups every container may call, whatever the arguments.
const ALWAYS_ALLOWED: &[&[&str]] = &[
    FILES,
    XATTRS,
    EVENTS,
    ASYNC_IO,
    MEMORY,
    PROCESSES,
    SCHEDULING,
    SELF_RESTRICTION,
    CREDENTIALS,
    SIGNALS,
    TIME,
    NETWORK,
    IPC,
    SYSTEM_INFO,
    COMPAT_ABIS,
    ARCH_SPECIFIC,
];

/// Calls only the native architecture has, and the seccomp architectures
/// the profile names: the native one and its 32-bit sub-architectures.
#[cfg(target_arch = "x86_64")]
const ARCH_SPECIFIC: &[&str] = &["arch_prctl", "modify_ldt"];
#[cfg(target_arch = "x86_64")]
const ARCHITECTURES: &[&str] = &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

/// Calls only the native architecture has, and the seccomp architectures
/// the profile names. The names are 32-bit ARM's, which Docker lists for
/// arm64 too; none exists in the aarch64 table.
#[cfg(target_arch = "aarch64")]
const ARCH_SPECIFIC: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "breakpoint",
    "cacheflush",
    "set_tls",
    "sync_file_range2",
];
#[cfg(target_arch = "aarch64")]
const ARCHITECTURES: &[&str] = &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"];

// ---- seccomp: calls allowed for some containers or some arguments ----

/// Capability names as OCI writes them (linux/capability.h).
const CAP_SYS_ADMIN: &str = "CAP_SYS_ADMIN";
const CAP_SYS_PTRACE: &str = "CAP_SYS_PTRACE";

/// clone(2) flags that create namespaces (include/uapi/linux/sched.h).
/// Without CAP_SYS_ADMIN a container may clone only with all of them clear;
/// CLONE_NEWTIME is not among them as it shares its bit with the exit
/// signal in clone(2)'s flags.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// Address families (include/linux/socket.h): every family may be opened
/// except AF_ALG (kernel crypto, a recurring source of exploits) and
/// AF_VSOCK (the host's and other guests' vsock services).
const AF_ALG: u64 = 38;
const AF_NFC: u64 = 39;
const AF_VSOCK: u64 = 40;

/// personality(2) values a container may set (include/uapi/linux/personality.h):
/// PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32 | UNAME26, and 0xffffffff,
/// which only queries. Other personalities switch on behaviour such as
/// READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE that weakens the container.
const PER_LINUX: u64 = 0x0;
const PER_LINUX32: u64 = 0x8;
const UNAME26: u64 = 0x0002_0000;
const PERSONALITY_QUERY: u64 = 0xffff_ffff;
const PERSONALITIES: &[Arg0] = &[
    Arg0::Equals(PER_LINUX),
    Arg0::Equals(PER_LINUX32),
    Arg0::Equals(UNAME26),
    Arg0::Equals(UNAME26 | PER_LINUX32),
    Arg0::Equals(PERSONALITY_QUERY),
];

/// Which containers a rule applies to.
#[derive(Debug, Clone, Copy)]
enum Gate {
    /// Every container.
    Always,
    /// Containers that keep this capability.
    With(&'static str),
    /// Containers that do not.
    Without(&'static str),
    /// Hosts running at least this kernel (major, minor).
    KernelAtLeast(u32, u32),
}

/// A comparison on a call's first argument.
#[derive(Debug, Clone, Copy)]
enum Arg0 {
    Equals(u64),
    Below(u64),
    Above(u64),
    /// None of these bits is set.
    Clear(u64),
}

/// What the profile answers to the calls a rule matches.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Allow,
    Errno(i32),
}

/// One line of the policy.
#[derive(Debug, Clone, Copy)]
struct Rule {
    names: &'static [&'static str],
    answer: Answer,
    /// Alternatives: the rule matches a call for which any of them holds;
    /// no alternative means every call.
    arg0: &'static [Arg0],
    gate: Gate,
}

const fn allow(names: &'static [&'static str]) -> Rule {
    Rule {
        names,
        answer: Answer::Allow,
        arg0: &[],
        gate: Gate::Always,
    }
}

impl Rule {
    const fn when(self, gate: Gate) -> Rule {
        Rule { gate, ..self }
    }

    const fn if_arg0(self, arg0: &'static [Arg0]) -> Rule {
        Rule { arg0, ..self }
    }

    const fn answering(self, answer: Answer) -> Rule {
        Rule { answer, ..self }
    }
}

/// The rules beyond [`ALWAYS_ALLOWED`], each with the containers it applies
/// to, as Docker's profile gates them.
const RULES: &[Rule] = &[
    allow(&["socket"]).if_arg0(&[Arg0::Below(AF_ALG), Arg0::Equals(AF_NFC), Arg0::Above(AF_VSOCK)]),
    allow(&["personality"]).if_arg0(PERSONALITIES),
    // Since Linux 4.8 seccomp checks a call again after a tracer changed
    // it, so tracing can no longer escape the filter; ptrace itself is
    // still confined by the PID namespace and the kernel's own checks.
    allow(&["ptrace", "process_vm_readv", "process_vm_writev"]).when(Gate::KernelAtLeast(4, 8)),
    // Threads and processes, but no new namespaces, unless CAP_SYS_ADMIN.
    allow(&["clone"])
        .if_arg0(&[Arg0::Clear(NAMESPACE_FLAGS)])
        .when(Gate::Without(CAP_SYS_ADMIN)),
    // clone3 passes its flags in memory, out of the filter's reach: answer
    // ENOSYS so libc falls back to clone, as it does on kernels before 5.3.
    allow(&["clone3"])
        .answering(Answer::Errno(libc::ENOSYS))
        .when(Gate::Without(CAP_SYS_ADMIN)),
    allow(&[
        "bpf",
        "clone",
        "clone3",
        "fanotify_init",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "lookup_dcookie",
        "lsm_get_self_attr",
        "lsm_list_modules",
        "lsm_set_self_attr",
        "mount",
        "mount_setattr",
        "move_mount",
        "open_tree",
        "perf_event_open",
        "quotactl",
        "quotactl_fd",
        "setdomainname",
        "sethostname",
        "setns",
        "syslog",
        "umount",
        "umount2",
        "unshare",
    ])
    .when(Gate::With(CAP_SYS_ADMIN)),
    allow(&[
        "kcmp",
        "pidfd_getfd",
        "process_madvise",
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
    ])
    .when(Gate::With(CAP_SYS_PTRACE)),
    allow(&["open_by_handle_at"]).when(Gate::With("CAP_DAC_READ_SEARCH")),
    allow(&["reboot"]).when(Gate::With("CAP_SYS_BOOT")),
    allow(&["chroot"]).when(Gate::With("CAP_SYS_CHROOT")),
    allow(&["delete_module", "finit_module", "init_module"]).when(Gate::With("CAP_SYS_MODULE")),
    allow(&["acct"]).when(Gate::With("CAP_SYS_PACCT")),
    allow(&["ioperm", "iopl"]).when(Gate::With("CAP_SYS_RAWIO")),
    allow(&["clock_settime", "clock_settime64", "settimeofday", "stime"]).when(Gate::With("CAP_SYS_TIME")),
    allow(&["vhangup"]).when(Gate::With("CAP_SYS_TTY_CONFIG")),
    allow(&["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]).when(Gate::With("CAP_SYS_NICE")),
    allow(&["syslog"]).when(Gate::With("CAP_SYSLOG")),
    allow(&["bpf"]).when(Gate::With("CAP_BPF")),
    allow(&["perf_event_open"]).when(Gate::With("CAP_PERFMON")),
];

/// The OCI `linux.seccomp` section for a container that keeps `caps`
/// (OCI names, `CAP_SYS_ADMIN`; normally its bounding set): every other
/// call fails with EPERM. Which rules apply also depends on the host
/// kernel's version, read here.
pub fn seccomp(caps: &[String]) -> Value {
    profile(caps, host_kernel())
}

/// [`seccomp`] for a host running `kernel` (major, minor; `None` when
/// unknown, which admits no kernel-gated rule).
fn profile(caps: &[String], kernel: Option<(u32, u32)>) -> Value {
    let admits = |gate: Gate| match gate {
        Gate::Always => true,
        Gate::With(cap) => caps.iter().any(|held| held == cap),
        Gate::Without(cap) => !caps.iter().any(|held| held == cap),
        Gate::KernelAtLeast(major, minor) => kernel.is_some_and(|running| running >= (major, minor)),
    };
    let always: Vec<&str> = ALWAYS_ALLOWED.iter().flat_map(|group| group.iter().copied()).collect();
    let mut syscalls = vec![json!({"names": always, "action": "SCMP_ACT_ALLOW"})];
    for rule in RULES.iter().filter(|rule| admits(rule.gate)) {
        syscalls.extend(oci_rules(rule));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": ARCHITECTURES,
        "syscalls": syscalls,
    })
}

/// A rule as OCI syscall entries: one per argument alternative, as
/// libseccomp and runc read alternatives.
fn oci_rules(rule: &Rule) -> Vec<Value> {
    let mut entry = json!({"names": rule.names});
    match rule.answer {
        Answer::Allow => entry["action"] = json!("SCMP_ACT_ALLOW"),
        Answer::Errno(errno) => {
            entry["action"] = json!("SCMP_ACT_ERRNO");
            entry["errnoRet"] = json!(errno);
        }
    }
    if rule.arg0.is_empty() {
        return vec![entry];
    }
    rule.arg0
        .iter()
        .map(|test| {
            let mut alternative = entry.clone();
            alternative["args"] = json!([oci_arg0(*test)]);
            alternative
        })
        .collect()
}

fn oci_arg0(test: Arg0) -> Value {
    match test {
        Arg0::Equals(value) => json!({"index": 0, "value": value, "op": "SCMP_CMP_EQ"}),
        Arg0::Below(value) => json!({"index": 0, "value": value, "op": "SCMP_CMP_LT"}),
        Arg0::Above(value) => json!({"index": 0, "value": value, "op": "SCMP_CMP_GT"}),
        Arg0::Clear(mask) => json!({"index": 0, "value": mask, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}),
    }
}

/// The running kernel's (major, minor), from uname(2).
fn host_kernel() -> Option<(u32, u32)> {
    let uts = nix::sys::utsname::uname().ok()?;
    parse_release(&uts.release().to_string_lossy())
}

/// (major, minor) of a release string such as `6.8.0-45-generic`.
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut numbers = release.split(|c: char| !c.is_ascii_digit());
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next()?.parse().ok()?;
    Some((major, minor))
}

// ---- paths ----

/// Paths hidden from the container (OCI `linux.maskedPaths`): files are
/// covered with /dev/null, directories with an empty read-only tmpfs. They
/// expose host hardware, kernel memory or other tenants' activity. The
/// list is moby's `daemon/pkg/oci/defaults.go`; [`masked_paths`] adds the
/// per-CPU entries that depend on the host.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    // Interrupt counts leak other tenants' activity: GHSA-6fw5-f8r9-fgfm.
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/firmware",
    // RAPL energy counters allow power side channels: GHSA-jq35-85cj-fj4p.
    "/sys/devices/virtual/powercap",
];

/// Paths the container sees read-only (OCI `linux.readonlyPaths`), from
/// moby's `daemon/pkg/oci/defaults.go`: kernel tunables and triggers that
/// are not namespaced, so a write would change the host.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Where the kernel lists CPUs, each with a `thermal_throttle` directory on
/// hosts that have one.
const CPU_DIR: &str = "/sys/devices/system/cpu";

/// [`MASKED_PATHS`] plus each CPU's `thermal_throttle` directory that exists
/// on this host, whose throttling counters leak other tenants' load as
/// /proc/interrupts does (GHSA-6fw5-f8r9-fgfm; Docker masks them too).
pub fn masked_paths() -> Vec<String> {
    let mut cpus: Vec<u32> = std::fs::read_dir(CPU_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
        .collect();
    cpus.sort_unstable();
    let throttles = cpus
        .into_iter()
        .map(|cpu| format!("{CPU_DIR}/cpu{cpu}/thermal_throttle"))
        .filter(|path| std::path::Path::new(path).exists());
    MASKED_PATHS.iter().map(|path| path.to_string()).chain(throttles).collect()
}

// ---- devices ----

/// /dev/net/tun, allowed by default because workloads (VPN clients) create
/// it with mknod: runc allows it again since 1.2.4 and crun since 1.20
/// (opencontainers/runc#4555, containers/crun#1637). The runtime's own
/// [`default_device_rules`] follow runc 1.2.0 and leave it out.
const TUN_MAJOR: i64 = 10;
const TUN_MINOR: i64 = 200;

/// The OCI `linux.resources.devices` list for an unprivileged container:
/// deny every device, then allow null, zero, full, random, urandom, tty,
/// console, ptmx, the pseudo-terminals and tun, and mknod of any node.
/// These are the runtime's [`default_device_rules`], which it also appends
/// to every spec's rules as runc does, plus tun; writing them all into the
/// spec keeps it self-contained for any runtime.
pub fn device_rules() -> Value {
    let tun = json!({"allow": true, "type": "c", "major": TUN_MAJOR, "minor": TUN_MINOR, "access": "rwm"});
    let rules = default_device_rules().iter().map(oci_device_rule).chain([tun]).collect();
    Value::Array(rules)
}

fn oci_device_rule(rule: &LinuxDeviceCgroup) -> Value {
    let mut entry = json!({"allow": rule.allow()});
    if let Some(kind) = rule.typ() {
        entry["type"] = json!(kind.as_str());
    }
    // No major or minor is the wildcard.
    if let Some(major) = rule.major() {
        entry["major"] = json!(major);
    }
    if let Some(minor) = rule.minor() {
        entry["minor"] = json!(minor);
    }
    if let Some(access) = rule.access() {
        entry["access"] = json!(access);
    }
    entry
}

/// The OCI `linux.devices` an unprivileged container gets: none. The
/// runtime creates the runtime-spec default devices itself
/// (`runtime::rootfs::device::DEFAULT_DEVICES`, /dev/ptmx and, with a
/// terminal, /dev/console), as Docker's empty list relies on.
pub fn default_devices() -> Value {
    json!([])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::rootfs::device::DEFAULT_DEVICES;
    use crate::security::capabilities::DOCKER_DEFAULT;
    use crate::security::seccomp::{compile, SeccompProgram};
    use oci_spec::runtime::{LinuxDeviceType, LinuxSeccomp};
    use std::collections::BTreeSet;

    /// A kernel new enough for every kernel-gated rule.
    const MODERN: Option<(u32, u32)> = Some((6, 8));

    fn docker_caps() -> Vec<String> {
        DOCKER_DEFAULT.iter().map(|cap| cap.to_string()).collect()
    }

    fn with(cap: &str) -> Vec<String> {
        let mut caps = docker_caps();
        caps.push(cap.to_string());
        caps
    }

    fn rules(profile: &Value) -> &[Value] {
        profile["syscalls"].as_array().map(Vec::as_slice).unwrap_or_default()
    }

    fn names(rule: &Value) -> Vec<&str> {
        rule["names"].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
    }

    /// Whether some rule allows every call of `name`.
    fn allows_every_call(profile: &Value, name: &str) -> bool {
        rules(profile)
            .iter()
            .any(|rule| rule["action"] == "SCMP_ACT_ALLOW" && rule.get("args").is_none() && names(rule).contains(&name))
    }

    /// Whether `name` appears in any rule at all.
    fn named(profile: &Value, name: &str) -> bool {
        rules(profile).iter().any(|rule| names(rule).contains(&name))
    }

    /// The rules naming `name`.
    fn rules_for<'a>(profile: &'a Value, name: &str) -> Vec<&'a Value> {
        rules(profile).iter().filter(|rule| names(rule).contains(&name)).collect()
    }

    fn compiled(profile: Value) -> SeccompProgram {
        let spec: LinuxSeccomp = serde_json::from_value(profile).expect("profile is an OCI seccomp section");
        compile(&spec).expect("profile compiles")
    }

    #[test]
    fn default_profile_compiles_to_one_filter() {
        assert_eq!(compiled(seccomp(&docker_caps())).filter_count(), 1);
        assert_eq!(compiled(profile(&docker_caps(), None)).filter_count(), 1);
    }

    #[test]
    fn every_capability_group_compiles() {
        let mut all = docker_caps();
        for rule in RULES {
            if let Gate::With(cap) = rule.gate {
                all.push(cap.to_string());
            }
        }
        assert_eq!(compiled(profile(&all, MODERN)).filter_count(), 1);
        assert_eq!(compiled(profile(&[], MODERN)).filter_count(), 1);
    }

    #[test]
    fn header_denies_with_eperm_on_the_native_architectures() {
        let profile = seccomp(&docker_caps());
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(profile["defaultErrnoRet"], 1);
        let spec: LinuxSeccomp = serde_json::from_value(profile).unwrap();
        let arches = spec.architectures().clone().unwrap_or_default();
        #[cfg(target_arch = "x86_64")]
        {
            use oci_spec::runtime::Arch;
            assert_eq!(arches, [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]);
        }
        #[cfg(target_arch = "aarch64")]
        assert_eq!(arches.len(), 2);
    }

    #[test]
    fn no_syscall_is_listed_twice_in_the_allow_groups() {
        let mut seen = BTreeSet::new();
        for name in ALWAYS_ALLOWED.iter().flat_map(|group| group.iter()) {
            assert!(seen.insert(*name), "{name} is in two groups");
        }
        // Nothing gated is also allowed unconditionally.
        for rule in RULES {
            for name in rule.names {
                assert!(!seen.contains(name), "{name} is both gated and always allowed");
            }
        }
    }

    #[test]
    fn basic_calls_are_allowed() {
        let profile = seccomp(&docker_caps());
        for name in ["read", "write", "exit_group", "openat", "mmap", "futex", "execve", "getpid"] {
            assert!(allows_every_call(&profile, name), "{name}");
        }
        // CAP_SYS_CHROOT is in Docker's default set.
        assert!(allows_every_call(&profile, "chroot"));
    }

    #[test]
    fn capability_gated_calls_need_their_capability() {
        let default = profile(&docker_caps(), MODERN);
        let cases = [
            ("CAP_SYS_ADMIN", "mount"),
            ("CAP_SYS_ADMIN", "umount2"),
            ("CAP_SYS_ADMIN", "unshare"),
            ("CAP_SYS_ADMIN", "setns"),
            ("CAP_SYS_PTRACE", "kcmp"),
            ("CAP_SYS_PTRACE", "pidfd_getfd"),
            ("CAP_SYS_BOOT", "reboot"),
            ("CAP_SYS_MODULE", "init_module"),
            ("CAP_SYS_MODULE", "finit_module"),
            ("CAP_SYS_RAWIO", "iopl"),
            ("CAP_SYS_TIME", "settimeofday"),
            ("CAP_SYS_TIME", "clock_settime"),
            ("CAP_SYS_NICE", "mbind"),
            ("CAP_SYS_PACCT", "acct"),
            ("CAP_SYSLOG", "syslog"),
            ("CAP_BPF", "bpf"),
            ("CAP_PERFMON", "perf_event_open"),
            ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
            ("CAP_SYS_TTY_CONFIG", "vhangup"),
        ];
        for (cap, name) in cases {
            assert!(!named(&default, name), "{name} without {cap}");
            assert!(allows_every_call(&profile(&with(cap), MODERN), name), "{name} with {cap}");
        }
        // Never allowed, whatever the capabilities.
        for name in ["pivot_root", "keyctl", "kexec_load", "io_uring_setup", "userfaultfd", "swapon"] {
            assert!(!named(&profile(&with("CAP_SYS_ADMIN"), MODERN), name), "{name}");
        }
    }

    #[test]
    fn ptrace_follows_the_kernel_version() {
        // Before 4.8 a tracer could change a call after seccomp checked it.
        let old = profile(&docker_caps(), Some((4, 7)));
        assert!(!named(&old, "ptrace"));
        assert!(!named(&profile(&docker_caps(), None), "ptrace"));
        assert!(allows_every_call(&profile(&with(CAP_SYS_PTRACE), Some((4, 7))), "ptrace"));
        let modern = profile(&docker_caps(), MODERN);
        for name in ["ptrace", "process_vm_readv", "process_vm_writev"] {
            assert!(allows_every_call(&modern, name), "{name}");
        }
    }

    #[test]
    fn kernel_releases_parse() {
        assert_eq!(parse_release("6.8.0-45-generic"), Some((6, 8)));
        assert_eq!(parse_release("5.15.167.4-microsoft-standard-WSL2"), Some((5, 15)));
        assert_eq!(parse_release("6.10-rc1"), Some((6, 10)));
        assert_eq!(parse_release("garbage"), None);
        assert!(host_kernel().is_some());
    }

    #[test]
    fn clone_without_sys_admin_cannot_make_namespaces() {
        assert_eq!(NAMESPACE_FLAGS, 0x7E02_0000);
        let default = seccomp(&docker_caps());
        let clone = rules_for(&default, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["action"], "SCMP_ACT_ALLOW");
        assert_eq!(
            clone[0]["args"],
            json!([{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}])
        );
        let clone3 = rules_for(&default, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(
            (&clone3[0]["action"], &clone3[0]["errnoRet"]),
            (&json!("SCMP_ACT_ERRNO"), &json!(38))
        );

        let admin = seccomp(&with(CAP_SYS_ADMIN));
        assert!(allows_every_call(&admin, "clone"));
        assert!(allows_every_call(&admin, "clone3"));
        assert!(rules_for(&admin, "clone").iter().all(|rule| rule.get("args").is_none()));
        assert!(rules_for(&admin, "clone3").iter().all(|rule| rule["action"] == "SCMP_ACT_ALLOW"));
    }

    #[test]
    fn personality_is_limited_to_docker_values() {
        let default = seccomp(&docker_caps());
        let personality = rules_for(&default, "personality");
        let values: BTreeSet<u64> = personality
            .iter()
            .map(|rule| {
                assert_eq!(rule["action"], "SCMP_ACT_ALLOW");
                assert_eq!(rule["args"][0]["op"], "SCMP_CMP_EQ");
                assert_eq!(rule["args"][0]["index"], 0);
                rule["args"][0]["value"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(values, BTreeSet::from([0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff]));
    }

    #[test]
    fn socket_excludes_alg_and_vsock() {
        let default = seccomp(&docker_caps());
        let args: Vec<&Value> = rules_for(&default, "socket").iter().map(|rule| &rule["args"][0]).collect();
        assert_eq!(
            args,
            [
                &json!({"index": 0, "value": 38, "op": "SCMP_CMP_LT"}),
                &json!({"index": 0, "value": 39, "op": "SCMP_CMP_EQ"}),
                &json!({"index": 0, "value": 40, "op": "SCMP_CMP_GT"}),
            ]
        );
    }

    // ---- the compiled default filter, installed in a forked child ----

    /// Exit codes of the probing child.
    const PROBE_OK: i32 = 0;
    const NO_NEW_PRIVS_FAILED: i32 = 10;
    const INSTALL_FAILED: i32 = 11;
    const UNSHARE_NOOP_NOT_EPERM: i32 = 12;
    const UNSHARE_UTS_NOT_EPERM: i32 = 13;
    const GETPID_FAILED: i32 = 14;
    const CLONE3_NOT_ENOSYS: i32 = 15;
    const PERSONALITY_NOT_EPERM: i32 = 16;

    /// The raw return value of a syscall with up to two integer arguments,
    /// and its errno.
    fn raw_syscall(nr: libc::c_long, a: libc::c_ulong, b: libc::c_ulong) -> (libc::c_long, i32) {
        // SAFETY: every probed call takes integers, or (clone3) a null
        // pointer with size 0 that the kernel rejects before reading.
        let ret = unsafe { libc::syscall(nr, a, b) };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        (ret, errno)
    }

    /// Runs in the forked child: no allocation, no locks, only raw calls.
    fn probe_default_filter(program: &SeccompProgram) -> i32 {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return NO_NEW_PRIVS_FAILED;
        }
        if program.install().is_err() {
            return INSTALL_FAILED;
        }
        if raw_syscall(libc::SYS_unshare, 0, 0) != (-1, libc::EPERM) {
            return UNSHARE_NOOP_NOT_EPERM;
        }
        if raw_syscall(libc::SYS_unshare, libc::CLONE_NEWUTS as libc::c_ulong, 0) != (-1, libc::EPERM) {
            return UNSHARE_UTS_NOT_EPERM;
        }
        // SAFETY: getpid has no preconditions.
        if raw_syscall(libc::SYS_getpid, 0, 0).0 != unsafe { libc::getpid() } as libc::c_long {
            return GETPID_FAILED;
        }
        if raw_syscall(libc::SYS_clone3, 0, 0) != (-1, libc::ENOSYS) {
            return CLONE3_NOT_ENOSYS;
        }
        // READ_IMPLIES_EXEC is not among the allowed personalities.
        if raw_syscall(libc::SYS_personality, 0x0040_0000, 0) != (-1, libc::EPERM) {
            return PERSONALITY_NOT_EPERM;
        }
        PROBE_OK
    }

    #[test]
    fn installed_default_filter_denies_namespaces_and_allows_getpid() {
        // Compiled before the fork: the child must not allocate, as another
        // test thread may have held the allocator's lock at fork time.
        let program = compiled(seccomp(&docker_caps()));
        // unshare(0) changes nothing and succeeds for anyone, so the child's
        // EPERM for it is the filter's, not a missing privilege; unless a
        // filter around this test (CI in a container) denies it already.
        if raw_syscall(libc::SYS_unshare, 0, 0).0 != 0 {
            eprintln!("note: unshare is denied around this test; its EPERM proves less");
        }
        // SAFETY: the child runs only the probe (raw syscalls and the
        // non-allocating install) and leaves through _exit, never returning
        // into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let code = probe_default_filter(&program);
            // SAFETY: ends the child without running the parent's
            // destructors or atexit handlers.
            unsafe { libc::_exit(code) }
        }
        let mut status = 0;
        // SAFETY: waits for our own child into a valid `status`.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
        assert!(libc::WIFEXITED(status), "child did not exit normally: status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), PROBE_OK, "see the probe's exit codes");
    }

    // ---- paths and devices ----

    #[test]
    fn paths_are_absolute_and_distinct() {
        let all: Vec<&str> = MASKED_PATHS.iter().chain(READONLY_PATHS).copied().collect();
        let distinct: BTreeSet<&str> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len());
        assert!(all.iter().all(|path| path.starts_with("/proc/") || path.starts_with("/sys/")));
        let masked = masked_paths();
        assert!(masked.starts_with(&MASKED_PATHS.iter().map(|p| p.to_string()).collect::<Vec<_>>()));
        assert!(masked[MASKED_PATHS.len()..].iter().all(|p| p.ends_with("/thermal_throttle")));
    }

    #[test]
    fn device_rules_deny_all_then_allow_the_default_devices() {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_value(device_rules()).expect("OCI device rules");
        let first = &rules[0];
        assert!(!first.allow());
        assert_eq!(first.access().as_deref(), Some("rwm"));
        assert!(first.major().is_none() && first.minor().is_none());
        let allows = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
            rules[1..].iter().any(|rule| {
                rule.allow()
                    && rule.typ() == Some(typ)
                    && rule.major() == major
                    && rule.minor() == minor
                    && rule.access().as_deref() == Some(access)
            })
        };
        for (major, minor) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (10, 200)] {
            assert!(allows(LinuxDeviceType::C, Some(major), Some(minor), "rwm"), "c {major}:{minor}");
        }
        assert!(allows(LinuxDeviceType::C, Some(136), None, "rwm"));
        assert!(allows(LinuxDeviceType::C, None, None, "m"));
        assert!(allows(LinuxDeviceType::B, None, None, "m"));
        // Every device the runtime creates by default can be used.
        for (path, major, minor) in DEFAULT_DEVICES {
            let (major, minor) = (Some(major as i64), Some(minor as i64));
            assert!(allows(LinuxDeviceType::C, major, minor, "rwm"), "{path}");
        }
        assert_eq!(default_devices(), json!([]));
    }
}
