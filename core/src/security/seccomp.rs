//! Seccomp: compiles the OCI `linux.seccomp` section to classic BPF once, in
//! the runtime, and installs it with a raw `seccomp(2)` call in the
//! container's init process.
//!
//! This module owns the translation of a profile (actions, syscall names,
//! argument comparisons, architectures, flags) into BPF programs, and the
//! installation of those programs. It does not decide *when* to install
//! (before or after dropping capabilities, depending on `noNewPrivileges`):
//! the init process does. It never sets `no_new_privs` either: the caller
//! holds `CAP_SYS_ADMIN` or has set it. `SCMP_ACT_NOTIFY` (user-space
//! notification) is not implemented and is refused at compile time.
//!
//! # One profile, one program
//!
//! [`seccompiler`] generates code with one match action and one mismatch
//! action, whereas an OCI profile gives every rule its own action. We compile
//! one *section* per distinct action and chain the sections into a single
//! BPF program:
//!
//! 1. the ABI guard (see below);
//! 2. one section per action other than ALLOW and the default, ordered by the
//!    kernel's precedence (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > TRACE >
//!    LOG, seccomp(2) "Filter return values"): a call matching the section's
//!    rules gets its action, any other call goes on to the next section;
//! 3. the default section: calls matching an ALLOW rule are allowed, all
//!    others get the default action. When the default is ALLOW there is no
//!    default section and a call no action section matched is allowed.
//!
//! A call matched by rules with different actions so gets the action of
//! highest precedence, as the kernel would answer for stacked filters; between
//! two of equal precedence (two ERRNO values), the one whose first rule comes
//! first in the profile. Rules whose action equals the default change nothing
//! and are dropped.
//!
//! Why not one stacked filter per action: each installed filter also judges
//! the `seccomp(2)` call that installs the next, so an allowlist that does not
//! list `seccomp` could never be installed whole. One program also means one
//! filter run per system call.
//!
//! # Architectures
//!
//! The program is compiled for the native architecture only (x86_64 or aarch64).
//! [`seccompiler`] answers `SECCOMP_RET_KILL_PROCESS` to any call made through
//! another ABI (`seccomp_data.arch`), so 32-bit sub-architectures listed in
//! `architectures` (`SCMP_ARCH_X86`, `SCMP_ARCH_X32`, `SCMP_ARCH_ARM`) are
//! accepted but ignored: a 32-bit program in the container is killed at its
//! first system call. A non-empty list must name the native architecture
//! (or `SCMP_ARCH_NATIVE`); otherwise compiling fails.
//!
//! x32 calls are special: they carry the x86_64 audit arch, with
//! `__X32_SYSCALL_BIT` set in the number. They get the default action when it
//! denies; when the default is ALLOW or LOG and the profile has rules, they
//! would escape every rule (no rule names an x32 number), so they are killed.
//!
//! # Syscalls newer than the profile
//!
//! Like runc, when the default action denies (anything but ALLOW and LOG),
//! calls numbered above the highest syscall the profile names get
//! `ERRNO(ENOSYS)` rather than the default: libc then falls back to an older
//! call, as it does on an older kernel, where EPERM would be a hard failure.
//! The ABI guard at the start of the program checks this before any rule, so
//! a KILL or TRAP default does not hide it.
//!
//! # Actions, names and arguments
//!
//! `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`. ERRNO and TRACE carry
//! `errnoRet` (`defaultErrnoRet` for the default action), EPERM when unset as
//! the OCI spec says; for TRACE that is the value the tracer sees (runc does
//! the same), and a call traced with no tracer attached fails with ENOSYS.
//! `errnoRet` on any other action is an error, as the spec requires.
//!
//! Syscall names unknown on the native architecture (`chown32`, `socketcall`,
//! `*_time64` in Docker's profile) are skipped, as runc does. Arguments are
//! compared as 64-bit values. Comparisons in one rule are ANDed, except that
//! several comparisons on the same argument index are alternatives (as in
//! libseccomp and runc, which turn them into separate rules): a rule is the
//! AND, over argument indexes, of the OR of the comparisons on that index.
//! Unlike runc, comparisons on other indexes stay ANDed with each
//! alternative.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::mem::offset_of;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator};
use seccompiler::{BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

/// errno for ERRNO and TRACE actions without `errnoRet`/`defaultErrnoRet`
/// (OCI runtime-spec, config-linux.md "Seccomp": "its default value is EPERM").
/// For TRACE this is the value handed to the tracer, as in runc.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// Largest errno the kernel passes on; it clamps larger `SECCOMP_RET_ERRNO`
/// data to it (MAX_ERRNO, include/linux/err.h).
const MAX_ERRNO: u32 = 4095;

/// Highest syscall argument index: `seccomp_data.args` has six entries
/// (include/uapi/linux/seccomp.h).
const MAX_ARG_INDEX: usize = 5;

/// Most instructions in one filter (BPF_MAXINSNS, include/uapi/linux/bpf_common.h).
const BPF_MAXINSNS: usize = 4096;

/// Classic BPF opcodes we emit ourselves (include/uapi/linux/bpf_common.h).
const LOAD_WORD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JUMP_EQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JUMP_GT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JUMP_GE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JUMP_ALWAYS: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The architecture berth runs on, the only one the program lets through.
#[cfg(target_arch = "x86_64")]
mod native {
    use oci_spec::runtime::Arch;
    pub use syscalls::x86_64::Sysno;

    pub const TARGET: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
    pub const OCI_ARCH: Arch = Arch::ScmpArchX86_64;
    /// AUDIT_ARCH_X86_64 = EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
    /// (include/uapi/linux/audit.h).
    pub const AUDIT_ARCH: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    /// __X32_SYSCALL_BIT (arch/x86/include/uapi/asm/unistd.h).
    pub const X32_SYSCALL_BIT: Option<u32> = Some(0x4000_0000);
}

/// The architecture berth runs on, the only one the program lets through.
#[cfg(target_arch = "aarch64")]
mod native {
    use oci_spec::runtime::Arch;
    pub use syscalls::aarch64::Sysno;

    pub const TARGET: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;
    pub const OCI_ARCH: Arch = Arch::ScmpArchAarch64;
    /// AUDIT_ARCH_AARCH64 = EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
    /// (include/uapi/linux/audit.h).
    pub const AUDIT_ARCH: u32 = 183 | 0x8000_0000 | 0x4000_0000;
    /// aarch64 has no x32-style ABI sharing its audit arch.
    pub const X32_SYSCALL_BIT: Option<u32> = None;
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("berth's seccomp compiler supports x86_64 and aarch64 only");

/// What went wrong compiling or installing a profile. `syscall` names the
/// rule concerned (its first syscall names, or `defaultAction`).
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// `architectures` is not empty and leaves out the one we compile for.
    #[error("architectures {listed:?} do not include the native architecture {native}")]
    NativeArchMissing { native: Arch, listed: Vec<Arch> },
    /// An action we cannot implement (`SCMP_ACT_NOTIFY`).
    #[error("{syscall}: action {action} is not supported")]
    UnsupportedAction { syscall: String, action: LinuxSeccompAction },
    /// `errnoRet` or `defaultErrnoRet` on an action that returns no value.
    #[error("{syscall}: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action}")]
    UnexpectedErrnoRet { syscall: String, action: LinuxSeccompAction },
    /// An errno or trace value the kernel cannot carry.
    #[error("{syscall}: return value {value} of {action} is above the maximum {max}")]
    ReturnValueOutOfRange {
        syscall: String,
        action: LinuxSeccompAction,
        value: u32,
        max: u32,
    },
    /// An argument comparison on an index above 5.
    #[error("{syscall}: argument index {index} is out of range (0 to 5)")]
    ArgIndexOutOfRange { syscall: String, index: usize },
    /// Repeated argument indexes multiply out to more rules than fit.
    #[error("{syscall}: argument comparisons expand to {count} alternatives, too many for a filter")]
    TooManyArgAlternatives { syscall: String, count: usize },
    /// A filter flag we do not support (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`).
    #[error("filter flag {flag} is not supported")]
    UnsupportedFlag { flag: LinuxSeccompFilterFlag },
    /// seccompiler refused a section, or the program is over 4096 instructions.
    #[error("compiling the {part}: {source}")]
    Compile {
        part: String,
        #[source]
        source: BackendError,
    },
    /// `seccomp(2)` failed, e.g. EACCES without `CAP_SYS_ADMIN` or `no_new_privs`.
    #[error("installing filter {index}: {source}")]
    Install {
        index: usize,
        #[source]
        source: io::Error,
    },
    /// With TSYNC, another thread of the process could not take the filter.
    #[error("installing filter {index}: thread {tid} could not be synchronised (TSYNC)")]
    ThreadSync { index: usize, tid: libc::c_long },
}

/// A compiled profile: BPF filters in install order (one, or none for a
/// profile that allows everything), and the `seccomp(2)` flags they are
/// installed with. Compile it before forking: installing does not allocate.
#[derive(Clone)]
pub struct SeccompProgram {
    filters: Vec<Vec<libc::sock_filter>>,
    flags: libc::c_ulong,
}

impl fmt::Debug for SeccompProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lengths: Vec<usize> = self.filters.iter().map(Vec::len).collect();
        f.debug_struct("SeccompProgram")
            .field("filter_lengths", &lengths)
            .field("flags", &format_args!("{:#x}", self.flags))
            .finish()
    }
}

/// Compiles `spec` for the native architecture. Installs nothing.
pub fn compile(spec: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    check_architectures(spec.architectures().as_deref())?;
    let flags = filter_flags(spec.flags().as_deref())?;
    let filters = plan(spec)?.generate()?;
    Ok(SeccompProgram { filters, flags })
}

impl SeccompProgram {
    /// Installs the filters into the calling thread (into all threads of the
    /// process with `SECCOMP_FILTER_FLAG_TSYNC`), in order. Does not set
    /// `no_new_privs`: the caller holds `CAP_SYS_ADMIN` or has set it, or the
    /// kernel refuses with EACCES. A filter cannot be removed: after an error
    /// the caller is expected to exit.
    pub fn install(&self) -> Result<(), SeccompError> {
        for (index, filter) in self.filters.iter().enumerate() {
            match set_mode_filter(filter, self.flags) {
                Ok(0) => {}
                // With TSYNC the kernel returns the id of a thread it could not synchronise.
                Ok(tid) => return Err(SeccompError::ThreadSync { index, tid }),
                Err(source) => return Err(SeccompError::Install { index, source }),
            }
        }
        Ok(())
    }

    /// How many filters [`install`](Self::install) installs: 1, or 0 when the
    /// profile allows everything.
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`: the kernel's return
/// value, or the errno.
fn set_mode_filter(filter: &[libc::sock_filter], flags: libc::c_ulong) -> io::Result<libc::c_long> {
    let len = libc::c_ushort::try_from(filter.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads the program.
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `len` instructions of `filter`, which outlives
    // the call; the kernel copies them and writes through neither pointer.
    // The other arguments are plain integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Refuses an architecture list that leaves out the native architecture; see
/// the module docs for why the other entries are ignored.
fn check_architectures(listed: Option<&[Arch]>) -> Result<(), SeccompError> {
    match listed {
        None | Some([]) => Ok(()),
        Some(listed) if listed.iter().any(|arch| *arch == Arch::ScmpArchNative || *arch == native::OCI_ARCH) => Ok(()),
        Some(listed) => Err(SeccompError::NativeArchMissing {
            native: native::OCI_ARCH,
            listed: listed.to_vec(),
        }),
    }
}

/// The OCI filter flags as `SECCOMP_FILTER_FLAG_*` bits.
fn filter_flags(flags: Option<&[LinuxSeccompFilterFlag]>) -> Result<libc::c_ulong, SeccompError> {
    flags.unwrap_or_default().iter().try_fold(0, |bits, flag| {
        let bit = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            // Only meaningful with a notification listener, which we do not create.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => return Err(SeccompError::UnsupportedFlag { flag: *flag }),
        };
        Ok(bits | bit)
    })
}

/// The action an OCI action and errno translate to; `syscall` labels errors.
fn translate_action(syscall: &str, action: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<SeccompAction, SeccompError> {
    use LinuxSeccompAction as Oci;

    if errno_ret.is_some() && !matches!(action, Oci::ScmpActErrno | Oci::ScmpActTrace) {
        return Err(SeccompError::UnexpectedErrnoRet {
            syscall: syscall.to_string(),
            action,
        });
    }
    let data = |max: u32| {
        let value = errno_ret.unwrap_or(DEFAULT_ERRNO);
        if value > max {
            return Err(SeccompError::ReturnValueOutOfRange {
                syscall: syscall.to_string(),
                action,
                value,
                max,
            });
        }
        Ok(value)
    };
    Ok(match action {
        Oci::ScmpActAllow => SeccompAction::Allow,
        Oci::ScmpActLog => SeccompAction::Log,
        Oci::ScmpActErrno => SeccompAction::Errno(data(MAX_ERRNO)?),
        Oci::ScmpActTrace => SeccompAction::Trace(data(libc::SECCOMP_RET_DATA)?),
        Oci::ScmpActTrap => SeccompAction::Trap,
        // SCMP_ACT_KILL is libseccomp's older name for killing the thread.
        Oci::ScmpActKill | Oci::ScmpActKillThread => SeccompAction::KillThread,
        Oci::ScmpActKillProcess => SeccompAction::KillProcess,
        Oci::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction {
                syscall: syscall.to_string(),
                action,
            })
        }
    })
}

/// Which calls of a syscall a rule matches.
#[derive(Debug, Clone, PartialEq)]
enum ArgMatch {
    /// Every call.
    Always,
    /// Calls for which every condition of at least one list holds; no list
    /// means no call.
    AnyOf(Vec<Vec<SeccompCondition>>),
}

/// The calls a rule's argument comparisons match; `syscall` labels errors.
fn arg_match(syscall: &str, args: &[LinuxSeccompArg]) -> Result<ArgMatch, SeccompError> {
    if args.is_empty() {
        return Ok(ArgMatch::Always);
    }
    let mut by_index: BTreeMap<usize, Vec<SeccompCondition>> = BTreeMap::new();
    for arg in args {
        let alternatives = by_index.entry(arg.index()).or_default();
        if let Some(condition) = condition(syscall, arg)? {
            alternatives.push(condition);
        }
    }
    let count = by_index
        .values()
        .fold(1usize, |count, alternatives| count.saturating_mul(alternatives.len()));
    if count > BPF_MAXINSNS {
        return Err(SeccompError::TooManyArgAlternatives {
            syscall: syscall.to_string(),
            count,
        });
    }
    // AND over indexes of OR within an index, multiplied out.
    let mut combined: Vec<Vec<SeccompCondition>> = vec![Vec::new()];
    for alternatives in by_index.values() {
        combined = combined
            .iter()
            .flat_map(|prefix| {
                alternatives.iter().map(move |condition| {
                    let mut conditions = prefix.clone();
                    conditions.push(condition.clone());
                    conditions
                })
            })
            .collect();
    }
    Ok(ArgMatch::AnyOf(combined))
}

/// One OCI comparison as a condition on the 64-bit argument, or `None` when
/// it can never hold (a MASKED_EQ value with bits outside the mask, which
/// seccompiler would otherwise mask away).
fn condition(syscall: &str, arg: &LinuxSeccompArg) -> Result<Option<SeccompCondition>, SeccompError> {
    let out_of_range = || SeccompError::ArgIndexOutOfRange {
        syscall: syscall.to_string(),
        index: arg.index(),
    };
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|index| usize::from(*index) <= MAX_ARG_INDEX)
        .ok_or_else(out_of_range)?;
    let value = arg.value();
    let (op, operand) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, value),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, value),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, value),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, value),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, value),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, value),
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            // OCI: `value` is the mask, `valueTwo` what the masked argument must equal.
            let expected = arg.value_two().unwrap_or(0);
            if expected & !value != 0 {
                return Ok(None);
            }
            (SeccompCmpOp::MaskedEq(value), expected)
        }
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, operand)
        .map(Some)
        .map_err(|_| out_of_range())
}

/// The number of a syscall on the native architecture, if it has one.
fn syscall_number(name: &str) -> Option<i64> {
    name.parse::<native::Sysno>().ok().map(|sysno| i64::from(sysno.id()))
}

/// A label for a rule in error messages: its first few syscall names.
fn rule_label(names: &[String]) -> String {
    const SHOWN: usize = 3;
    match names.len() {
        0 => "rule without names".to_string(),
        n if n <= SHOWN => names.join(", "),
        n => format!("{} and {} more", names[..SHOWN].join(", "), n - SHOWN),
    }
}

/// The calls one section matches: syscall number → calls of it.
#[derive(Debug, Default, Clone)]
struct RuleSet(BTreeMap<i64, ArgMatch>);

impl RuleSet {
    fn add(&mut self, nr: i64, matched: &ArgMatch) {
        match matched {
            ArgMatch::Always => {
                self.0.insert(nr, ArgMatch::Always);
            }
            ArgMatch::AnyOf(more) => match self.0.entry(nr).or_insert_with(|| ArgMatch::AnyOf(Vec::new())) {
                ArgMatch::Always => {}
                ArgMatch::AnyOf(have) => have.extend(more.iter().cloned()),
            },
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// seccompiler's form, where an empty rule list means "every call".
    fn into_rules(self) -> Result<BTreeMap<i64, Vec<SeccompRule>>, BackendError> {
        let mut rules = BTreeMap::new();
        for (nr, matched) in self.0 {
            match matched {
                ArgMatch::Always => {
                    rules.insert(nr, Vec::new());
                }
                ArgMatch::AnyOf(alternatives) if alternatives.is_empty() => {}
                ArgMatch::AnyOf(alternatives) => {
                    let alternatives = alternatives.into_iter().map(SeccompRule::new).collect::<Result<_, _>>()?;
                    rules.insert(nr, alternatives);
                }
            }
        }
        Ok(rules)
    }
}

/// A profile resolved for the native architecture, before code generation.
#[derive(Debug)]
struct Plan {
    default: SeccompAction,
    /// Calls of rules with action ALLOW, when that is not the default.
    allowed: RuleSet,
    /// For each action other than ALLOW and the default, the calls it gets,
    /// in the order the actions first appear in the profile.
    by_action: Vec<(SeccompAction, RuleSet)>,
    /// The highest syscall number the profile names on this architecture.
    highest_named: Option<i64>,
}

/// Resolves names, actions and arguments; validates every rule, including
/// rules dropped because none of their names exists here.
fn plan(spec: &LinuxSeccomp) -> Result<Plan, SeccompError> {
    let default = translate_action("defaultAction", spec.default_action(), spec.default_errno_ret())?;
    let mut plan = Plan {
        default,
        allowed: RuleSet::default(),
        by_action: Vec::new(),
        highest_named: None,
    };
    for rule in spec.syscalls().iter().flatten() {
        let label = rule_label(rule.names());
        let action = translate_action(&label, rule.action(), rule.errno_ret())?;
        let matched = arg_match(&label, rule.args().as_deref().unwrap_or_default())?;
        let numbers: Vec<i64> = rule.names().iter().filter_map(|name| syscall_number(name)).collect();
        plan.highest_named = plan.highest_named.max(numbers.iter().copied().max());
        if action == plan.default || numbers.is_empty() {
            continue;
        }
        let rules = match action {
            SeccompAction::Allow => &mut plan.allowed,
            _ => plan.rules_for(action),
        };
        for &nr in &numbers {
            rules.add(nr, &matched);
        }
    }
    Ok(plan)
}

/// Rank in the kernel's precedence order, highest first (seccomp(2),
/// "Filter return values").
fn precedence(action: &SeccompAction) -> u8 {
    match action {
        SeccompAction::KillProcess => 0,
        SeccompAction::KillThread => 1,
        SeccompAction::Trap => 2,
        SeccompAction::Errno(_) => 3,
        SeccompAction::Trace(_) => 4,
        SeccompAction::Log => 5,
        SeccompAction::Allow => 6,
    }
}

impl Plan {
    /// The rule set of `action`'s section, created on first use.
    fn rules_for(&mut self, action: SeccompAction) -> &mut RuleSet {
        let position = match self.by_action.iter().position(|(a, _)| *a == action) {
            Some(position) => position,
            None => {
                self.by_action.push((action, RuleSet::default()));
                self.by_action.len() - 1
            }
        };
        &mut self.by_action[position].1
    }

    /// The verdicts for x32 calls and for calls newer than the profile
    /// (see the module docs).
    fn guard(&self) -> AbiGuard {
        let permissive = matches!(self.default, SeccompAction::Allow | SeccompAction::Log);
        let has_rules = !self.by_action.is_empty() || !self.allowed.is_empty();
        let x32 = native::X32_SYSCALL_BIT.map(|bit| {
            let action = if permissive && has_rules {
                SeccompAction::KillProcess
            } else {
                self.default.clone()
            };
            (bit, action)
        });
        let enosys_above = if permissive {
            None
        } else {
            self.highest_named.and_then(|nr| u32::try_from(nr).ok())
        };
        AbiGuard { x32, enosys_above }
    }

    /// The whole profile as one program (none if it allows everything): the
    /// ABI guard, the action sections by precedence, the default section.
    fn generate(self) -> Result<Vec<Vec<libc::sock_filter>>, SeccompError> {
        let guard = self.guard();
        let mut by_action = self.by_action;
        // Stable: between equal precedence, the action that appears first wins.
        by_action.sort_by_key(|(action, _)| precedence(action));
        let mut sections = Vec::with_capacity(by_action.len() + 1);
        for (action, rules) in by_action {
            let label = format!("section for action {action:?}");
            let rules = rules.into_rules().map_err(compile_error(&label))?;
            if !rules.is_empty() {
                sections.push(compile_section(&label, rules, SeccompAction::Allow, action)?);
            }
        }
        if self.default != SeccompAction::Allow {
            let label = format!("section for the default action {:?}", self.default);
            let rules = self.allowed.into_rules().map_err(compile_error(&label))?;
            sections.push(compile_section(&label, rules, self.default, SeccompAction::Allow)?);
        }
        let Some(last) = sections.pop() else {
            return Ok(Vec::new());
        };
        let mut program = guard.instructions();
        for section in sections {
            program.extend(continue_on_allow(section));
        }
        program.extend(last);
        if program.len() > BPF_MAXINSNS {
            let source = BackendError::FilterTooLarge(program.len());
            return Err(compile_error("whole profile")(source));
        }
        Ok(vec![program])
    }
}

/// Wraps a seccompiler error with the part of the program it concerns.
fn compile_error(label: &str) -> impl Fn(BackendError) -> SeccompError + '_ {
    move |source| SeccompError::Compile {
        part: label.to_string(),
        source,
    }
}

/// seccompiler's code for one section: `on_match` for `rules`, `mismatch`
/// for every other call.
fn compile_section(
    label: &str,
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    on_match: SeccompAction,
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let filter = SeccompFilter::new(rules, mismatch, on_match, native::TARGET).map_err(compile_error(label))?;
    let code: BpfProgram = filter.try_into().map_err(compile_error(label))?;
    Ok(code
        .into_iter()
        .map(|insn| libc::sock_filter {
            code: insn.code,
            jt: insn.jt,
            jf: insn.jf,
            k: insn.k,
        })
        .collect())
}

/// Turns every "return ALLOW" of an action section into a jump to the
/// instruction after the section, so the next section decides instead.
/// One instruction replaces another: no other jump moves.
fn continue_on_allow(mut section: Vec<libc::sock_filter>) -> Vec<libc::sock_filter> {
    let allow = u32::from(SeccompAction::Allow);
    let len = section.len();
    for (index, insn) in section.iter_mut().enumerate() {
        if insn.code == RETURN && insn.k == allow {
            // `len` is at most BPF_MAXINSNS, checked by seccompiler.
            let to_end = u32::try_from(len - index - 1).unwrap_or(u32::MAX);
            *insn = stmt(JUMP_ALWAYS, to_end);
        }
    }
    section
}

/// What the program answers first, for native-arch calls that no rule can
/// name: x32 calls and calls newer than the profile. Calls from other audit
/// arches fall through to seccompiler's arch check, which kills them.
#[derive(Debug, Clone, PartialEq)]
struct AbiGuard {
    /// The x32 bit and the verdict for calls carrying it.
    x32: Option<(u32, SeccompAction)>,
    /// ENOSYS for syscall numbers above this one.
    enosys_above: Option<u32>,
}

impl AbiGuard {
    fn instructions(&self) -> Vec<libc::sock_filter> {
        // Each check is "jump over the next instruction unless it holds; return".
        let mut checks = Vec::new();
        if let Some((bit, action)) = &self.x32 {
            checks.push(jump(JUMP_GE, *bit, 0, 1));
            checks.push(ret(action.clone()));
        }
        if let Some(highest) = self.enosys_above {
            checks.push(jump(JUMP_GT, highest, 0, 1));
            checks.push(ret(SeccompAction::Errno(libc::ENOSYS as u32)));
        }
        if checks.is_empty() {
            return checks;
        }
        // Past the number load and the checks: where the first section starts.
        let skip_guard = u8::try_from(checks.len() + 1).unwrap_or(u8::MAX);
        let mut program = vec![
            stmt(LOAD_WORD, offset_of!(libc::seccomp_data, arch) as u32),
            jump(JUMP_EQ, native::AUDIT_ARCH, 0, skip_guard),
            stmt(LOAD_WORD, offset_of!(libc::seccomp_data, nr) as u32),
        ];
        program.extend(checks);
        program
    }
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn ret(action: SeccompAction) -> libc::sock_filter {
    stmt(RETURN, u32::from(action))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSeccompBuilder;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("test profile parses")
    }

    fn compiled(json: &str) -> SeccompProgram {
        compile(&profile(json)).expect("test profile compiles")
    }

    /// What the child needs to run a probe and exit, plus a high-numbered
    /// syscall so that unlisted probes below it get the default action.
    const BASE_NAMES: &str = r#""exit_group", "exit", "getpid", "getrandom""#;

    fn allowlist(extra_rules: &str) -> String {
        format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_X86"],
                "syscalls": [{{"names": [{BASE_NAMES}], "action": "SCMP_ACT_ALLOW"}}{extra_rules}]}}"#
        )
    }

    // ---- compile() ----

    /// The actions of the program's sections, in program order.
    fn sections(json: &str) -> Vec<SeccompAction> {
        let mut by_action = plan(&profile(json)).unwrap().by_action;
        by_action.sort_by_key(|(action, _)| precedence(action));
        by_action.into_iter().map(|(action, _)| action).collect()
    }

    #[test]
    fn allowlist_is_one_filter() {
        assert_eq!(compiled(&allowlist("")).filter_count(), 1);
        assert!(sections(&allowlist("")).is_empty());
    }

    #[test]
    fn each_distinct_action_gets_a_section_in_precedence_order() {
        let json = allowlist(
            r#", {"names": ["getuid"], "action": "SCMP_ACT_LOG"},
                 {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                 {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                 {"names": ["gettid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                 {"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}"#,
        );
        assert_eq!(
            sections(&json),
            [
                SeccompAction::KillProcess,
                SeccompAction::Errno(38),
                SeccompAction::Errno(13),
                SeccompAction::Log
            ]
        );
        assert_eq!(compiled(&json).filter_count(), 1);
    }

    #[test]
    fn rules_with_the_default_action_are_dropped() {
        // ERRNO without errnoRet is ERRNO(EPERM), the default.
        let json = allowlist(r#", {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}"#);
        assert!(sections(&json).is_empty());
        let plan = plan(&profile(&json)).unwrap();
        let getppid = i64::from(native::Sysno::getppid.id());
        assert!(!plan.allowed.0.contains_key(&getppid));
    }

    #[test]
    fn default_allow_without_rules_installs_nothing() {
        let allow_all = r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#;
        assert_eq!(compiled(allow_all).filter_count(), 0);
        let allow_rule_only = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}"#;
        assert_eq!(compiled(allow_rule_only).filter_count(), 0);
        let one_rule = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}"#;
        assert_eq!(compiled(one_rule).filter_count(), 1);
    }

    #[test]
    fn unknown_names_are_skipped() {
        let json = allowlist(
            r#", {"names": ["chown32", "socketcall", "clock_gettime64", "getppid"],
                  "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                 {"names": ["no_such_syscall"], "action": "SCMP_ACT_KILL"}"#,
        );
        // The KILL rule names nothing that exists here: no section.
        assert_eq!(sections(&json), [SeccompAction::Errno(38)]);
        assert_eq!(compiled(&json).filter_count(), 1);
    }

    #[test]
    fn allow_returns_of_action_sections_continue() {
        let program = compiled(&allowlist(
            r#", {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}"#,
        ));
        let allow = u32::from(SeccompAction::Allow);
        let filter = &program.filters[0];
        // Every section starts with seccompiler's arch check, which kills;
        // only the last (default) section may still return ALLOW.
        let kill = u32::from(SeccompAction::KillProcess);
        let last_section = filter.iter().rposition(|insn| insn.code == RETURN && insn.k == kill).unwrap();
        let first_allow = filter.iter().position(|insn| insn.code == RETURN && insn.k == allow).unwrap();
        assert!(first_allow > last_section);
        let last = filter.last().unwrap();
        assert_eq!((last.code, last.k), (RETURN, u32::from(SeccompAction::Errno(1))));
    }

    #[test]
    fn a_docker_sized_profile_fits() {
        let denied = ["keyctl", "add_key", "request_key", "mount", "unshare"];
        let names: Vec<String> = native::Sysno::iter()
            .map(|sysno| sysno.name().to_string())
            .filter(|name| !denied.contains(&name.as_str()) && name != "clone3")
            .chain(["chown32".to_string(), "socketcall".to_string()])
            .collect();
        let spec = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                              "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
            "syscalls": [
                {"names": names, "action": "SCMP_ACT_ALLOW"},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_LT"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        });
        let spec: LinuxSeccomp = serde_json::from_value(spec).unwrap();
        let program = compile(&spec).unwrap();
        assert_eq!(program.filter_count(), 1);
        assert!(program.filters[0].len() <= BPF_MAXINSNS);
    }

    #[test]
    fn argument_index_above_five_is_refused() {
        let err = compile(&profile(&allowlist(
            r#", {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}"#,
        )))
        .unwrap_err();
        assert!(
            matches!(&err, SeccompError::ArgIndexOutOfRange { syscall, index: 6 } if syscall == "personality"),
            "{err}"
        );
        assert!(err.to_string().contains("personality"));
    }

    #[test]
    fn notify_is_refused() {
        let in_rule = compile(&profile(&allowlist(r#", {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}"#))).unwrap_err();
        assert!(
            matches!(&in_rule, SeccompError::UnsupportedAction { syscall, action: LinuxSeccompAction::ScmpActNotify } if syscall == "getppid"),
            "{in_rule}"
        );
        let as_default = compile(&profile(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#)).unwrap_err();
        assert!(matches!(as_default, SeccompError::UnsupportedAction { .. }));
    }

    #[test]
    fn flags_are_translated_and_wait_killable_refused() {
        let spec = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
        );
        assert_eq!(
            compile(&spec).unwrap().flags,
            libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_TSYNC | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
        );
        let spec = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        );
        assert!(matches!(
            compile(&spec).unwrap_err(),
            SeccompError::UnsupportedFlag {
                flag: LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv
            }
        ));
        // Flags outside the OCI list do not even parse.
        assert!(
            serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}"#).is_err()
        );
    }

    #[test]
    fn architecture_list_must_name_the_native_one() {
        let foreign = profile(r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390X"]}"#);
        assert!(matches!(
            compile(&foreign).unwrap_err(),
            SeccompError::NativeArchMissing {
                native: native::OCI_ARCH,
                ..
            }
        ));
        let native_alias = profile(r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_NATIVE"]}"#);
        assert!(compile(&native_alias).is_ok());
        let empty = profile(r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": []}"#);
        assert!(compile(&empty).is_ok());
    }

    #[test]
    fn errno_ret_is_checked() {
        let on_allow = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}"#,
        );
        assert!(matches!(
            compile(&on_allow).unwrap_err(),
            SeccompError::UnexpectedErrnoRet { syscall, .. } if syscall == "getpid"
        ));
        let default_on_kill = profile(r#"{"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}"#);
        assert!(matches!(
            compile(&default_on_kill).unwrap_err(),
            SeccompError::UnexpectedErrnoRet { syscall, .. } if syscall == "defaultAction"
        ));
        let too_big = profile(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4096}"#);
        assert!(matches!(
            compile(&too_big).unwrap_err(),
            SeccompError::ReturnValueOutOfRange { value: 4096, .. }
        ));
    }

    #[test]
    fn actions_translate() {
        use LinuxSeccompAction as Oci;
        let t = |action, errno| translate_action("x", action, errno).unwrap();
        assert_eq!(t(Oci::ScmpActErrno, None), SeccompAction::Errno(1));
        assert_eq!(t(Oci::ScmpActErrno, Some(38)), SeccompAction::Errno(38));
        assert_eq!(t(Oci::ScmpActTrace, None), SeccompAction::Trace(1));
        assert_eq!(t(Oci::ScmpActTrace, Some(7)), SeccompAction::Trace(7));
        assert_eq!(t(Oci::ScmpActKill, None), SeccompAction::KillThread);
        assert_eq!(t(Oci::ScmpActKillThread, None), SeccompAction::KillThread);
        assert_eq!(t(Oci::ScmpActKillProcess, None), SeccompAction::KillProcess);
        assert_eq!(t(Oci::ScmpActTrap, None), SeccompAction::Trap);
        assert_eq!(t(Oci::ScmpActLog, None), SeccompAction::Log);
        assert_eq!(t(Oci::ScmpActAllow, None), SeccompAction::Allow);
    }

    fn args(json: &str) -> Vec<LinuxSeccompArg> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn repeated_index_becomes_alternatives() {
        let matched = arg_match(
            "kill",
            &args(
                r#"[{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 19, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 1, "op": "SCMP_CMP_GT"}]"#,
            ),
        )
        .unwrap();
        let eq = |index, value| SeccompCondition::new(index, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, value).unwrap();
        let gt1 = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::Gt, 1).unwrap();
        assert_eq!(matched, ArgMatch::AnyOf(vec![vec![gt1.clone(), eq(1, 9)], vec![gt1, eq(1, 19)]]));
        let distinct = arg_match(
            "mmap",
            &args(
                r#"[{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                    {"index": 2, "value": 4, "op": "SCMP_CMP_EQ"}]"#,
            ),
        )
        .unwrap();
        assert_eq!(distinct, ArgMatch::AnyOf(vec![vec![eq(0, 0), eq(2, 4)]]));
    }

    #[test]
    fn unsatisfiable_masked_eq_matches_nothing() {
        // (arg & 0xf0) can never be 0x01.
        let matched = arg_match(
            "umask",
            &args(r#"[{"index": 0, "value": 240, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]"#),
        )
        .unwrap();
        assert_eq!(matched, ArgMatch::AnyOf(Vec::new()));
        // An allow rule that can never match leaves the syscall to the default.
        let spec = profile(&allowlist(
            r#", {"names": ["umask"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": 240, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]}"#,
        ));
        let rules = plan(&spec).unwrap().allowed.into_rules().unwrap();
        assert!(!rules.contains_key(&i64::from(native::Sysno::umask.id())));
    }

    #[test]
    fn too_many_alternatives_are_refused() {
        let many: Vec<serde_json::Value> = (0..6)
            .flat_map(|index| (0..5).map(move |value| serde_json::json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"})))
            .collect();
        let many: Vec<LinuxSeccompArg> = serde_json::from_value(many.into()).unwrap();
        assert!(matches!(
            arg_match("ioctl", &many).unwrap_err(),
            SeccompError::TooManyArgAlternatives { count: 15625, .. }
        ));
    }

    #[test]
    fn guard_depends_on_the_default_action() {
        let getrandom = i64::from(native::Sysno::getrandom.id());
        let denying = plan(&profile(&allowlist(""))).unwrap();
        assert_eq!(denying.highest_named, Some(getrandom));
        let guard = denying.guard();
        assert_eq!(guard.enosys_above, u32::try_from(getrandom).ok());
        if let Some((_, action)) = guard.x32 {
            assert_eq!(action, SeccompAction::Errno(1));
        }

        let permissive = plan(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}"#,
        ))
        .unwrap();
        let guard = permissive.guard();
        assert_eq!(guard.enosys_above, None);
        if let Some((_, action)) = guard.x32 {
            assert_eq!(action, SeccompAction::KillProcess);
        }

        let log_only = plan(&profile(r#"{"defaultAction": "SCMP_ACT_LOG"}"#)).unwrap();
        assert_eq!(log_only.guard().enosys_above, None);
        if let Some((_, action)) = log_only.guard().x32 {
            assert_eq!(action, SeccompAction::Log);
        }

        // A profile that names nothing here has no "newer" syscalls.
        let unnamed = plan(&profile(r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS"}"#)).unwrap();
        assert_eq!(unnamed.guard().enosys_above, None);
    }

    #[test]
    fn builder_profiles_compile() {
        let spec = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActTrap)
            .build()
            .unwrap();
        assert_eq!(compile(&spec).unwrap().filter_count(), 1);
    }

    // ---- install() in forked children ----

    /// Runs `probe` in a forked child: returns its exit code, or 128 + the
    /// signal that killed it. The child must not allocate or lock: another
    /// test thread may have held the allocator's lock at fork time.
    fn in_child(probe: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child runs only `probe` (raw syscalls, no allocation)
        // and leaves through `_exit`, never returning into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(probe)).unwrap_or(255);
            // SAFETY: ends the forked child without running the parent's
            // destructors or atexit handlers.
            unsafe { libc::_exit(code) }
        }
        let mut status = 0;
        // SAFETY: waits for our own child into a valid `status`.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid, "waitpid: {}", io::Error::last_os_error());
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            -1
        }
    }

    fn errno() -> i32 {
        io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// Exit code when the child could not set no_new_privs / install.
    const SETUP_FAILED: i32 = 200;
    /// Exit code when SIGSYS killed the child.
    const KILLED_BY_SIGSYS: i32 = 128 + libc::SIGSYS;

    /// In a child: sets no_new_privs, installs `program`, calls `nr(args)`.
    /// Returns the call's errno, 0 if it succeeded.
    fn errno_of(program: &SeccompProgram, nr: libc::c_long, args: [u64; 2]) -> i32 {
        in_child(|| {
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return SETUP_FAILED;
            }
            if program.install().is_err() {
                return SETUP_FAILED + 1;
            }
            // SAFETY: the probed syscalls take integers or accept these
            // null/zero arguments without touching our memory.
            let ret = unsafe { libc::syscall(nr, args[0], args[1]) };
            if ret == -1 {
                errno()
            } else {
                0
            }
        })
    }

    #[test]
    fn allowlist_denies_the_rest_with_eperm() {
        let program = compiled(&allowlist(""));
        assert_eq!(errno_of(&program, libc::SYS_getpid, [0, 0]), 0);
        assert_eq!(errno_of(&program, libc::SYS_getppid, [0, 0]), libc::EPERM);
    }

    #[test]
    fn errno_rule_beats_the_default_errno() {
        let program = compiled(&allowlist(
            r#", {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}"#,
        ));
        assert_eq!(errno_of(&program, libc::SYS_getppid, [0, 0]), libc::ENOSYS);
        assert_eq!(errno_of(&program, libc::SYS_getpid, [0, 0]), 0);
        assert_eq!(errno_of(&program, libc::SYS_gettid, [0, 0]), libc::EPERM);
    }

    #[test]
    fn argument_comparison_selects_calls() {
        let program = compiled(&allowlist(
            r#", {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]}"#,
        ));
        assert_eq!(errno_of(&program, libc::SYS_personality, [0xffff_ffff, 0]), 0);
        assert_eq!(errno_of(&program, libc::SYS_personality, [0, 0]), libc::EPERM);
        // The upper half of the argument is compared too.
        assert_eq!(errno_of(&program, libc::SYS_personality, [0x1_ffff_ffff, 0]), libc::EPERM);
    }

    #[test]
    fn repeated_index_allows_either_value() {
        let program = compiled(&allowlist(
            r#", {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"},
                           {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}"#,
        ));
        assert_eq!(errno_of(&program, libc::SYS_personality, [0xffff_ffff, 0]), 0);
        assert_eq!(errno_of(&program, libc::SYS_personality, [0, 0]), 0);
        assert_eq!(errno_of(&program, libc::SYS_personality, [8, 0]), libc::EPERM);
    }

    #[test]
    fn masked_eq_compares_masked_bits() {
        // umask allowed only when no owner bits are masked.
        let program = compiled(&allowlist(
            r#", {"names": ["umask"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": 448, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}"#,
        ));
        assert_eq!(errno_of(&program, libc::SYS_umask, [0o022, 0]), 0);
        assert_eq!(errno_of(&program, libc::SYS_umask, [0o722, 0]), libc::EPERM);
    }

    #[test]
    fn syscalls_newer_than_the_profile_get_enosys() {
        let program = compiled(&allowlist(""));
        assert_eq!(errno_of(&program, 1000, [0, 0]), libc::ENOSYS);
        // Below the highest named syscall, the default still applies.
        assert_eq!(errno_of(&program, libc::SYS_getppid, [0, 0]), libc::EPERM);
    }

    #[test]
    fn enosys_beats_a_kill_default() {
        let program = compiled(
            r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
                {"names": ["exit_group", "exit", "getpid", "getrandom"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(errno_of(&program, 1000, [0, 0]), libc::ENOSYS);
        assert_eq!(errno_of(&program, libc::SYS_getppid, [0, 0]), KILLED_BY_SIGSYS);
    }

    #[test]
    fn kill_rule_outranks_the_allowlist() {
        let program = compiled(&allowlist(r#", {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}"#));
        assert_eq!(errno_of(&program, libc::SYS_getppid, [0, 0]), KILLED_BY_SIGSYS);
    }

    #[test]
    fn overlapping_rules_take_the_highest_precedence() {
        let program = compiled(&allowlist(
            r#", {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                 {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}"#,
        ));
        assert_eq!(errno_of(&program, libc::SYS_getppid, [0, 0]), KILLED_BY_SIGSYS);
        // Equal precedence: the action listed first wins.
        let program = compiled(&allowlist(
            r#", {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                 {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}"#,
        ));
        assert_eq!(errno_of(&program, libc::SYS_getppid, [0, 0]), libc::ENOSYS);
    }

    #[test]
    fn log_rule_lets_the_call_through() {
        let program = compiled(&allowlist(
            r#", {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
                 {"names": ["getuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}"#,
        ));
        assert_eq!(errno_of(&program, libc::SYS_getppid, [0, 0]), 0);
        assert_eq!(errno_of(&program, libc::SYS_getuid, [0, 0]), libc::EACCES);
        assert_eq!(errno_of(&program, libc::SYS_getpid, [0, 0]), 0);
        assert_eq!(errno_of(&program, libc::SYS_gettid, [0, 0]), libc::EPERM);
    }

    #[test]
    fn trace_without_tracer_fails_with_enosys() {
        let program = compiled(&allowlist(r#", {"names": ["getppid"], "action": "SCMP_ACT_TRACE"}"#));
        assert_eq!(errno_of(&program, libc::SYS_getppid, [0, 0]), libc::ENOSYS);
    }

    #[test]
    fn default_allow_with_one_errno_rule() {
        let program = compiled(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
        );
        assert_eq!(errno_of(&program, libc::SYS_getppid, [0, 0]), libc::EACCES);
        assert_eq!(errno_of(&program, libc::SYS_getpid, [0, 0]), 0);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_calls_get_no_hole() {
        let x32_getpid = 0x4000_0000 | libc::SYS_getpid;
        // Denying default: the default action, not ENOSYS, not allowed.
        let program = compiled(&allowlist(""));
        assert_eq!(errno_of(&program, x32_getpid, [0, 0]), libc::EPERM);
        // Permissive default with rules: killed rather than let past them.
        let program = compiled(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        assert_eq!(errno_of(&program, 0x4000_0000 | libc::SYS_getppid, [0, 0]), KILLED_BY_SIGSYS);
    }

    #[test]
    fn install_does_not_set_no_new_privs() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: installing without no_new_privs needs root");
            return;
        }
        let program = compiled(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
        );
        let code = in_child(|| {
            if program.install().is_err() {
                return SETUP_FAILED + 1;
            }
            // SAFETY: prctl with integer arguments only.
            let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
            if nnp != 0 {
                return 100 + nnp;
            }
            // SAFETY: getppid takes no arguments.
            let ret = unsafe { libc::syscall(libc::SYS_getppid) };
            if ret == -1 {
                errno()
            } else {
                0
            }
        });
        assert_eq!(code, libc::EACCES, "no_new_privs stays off and the filter works");
    }
}
