//! Assembles the `BPF_PROG_TYPE_CGROUP_DEVICE` program that enforces an
//! ordered device rule list on cgroup v2, as raw BPF instructions.
//!
//! The kernel calls the program with `struct bpf_cgroup_dev_ctx { u32
//! access_type; u32 major; u32 minor; }`, `access_type` being `(access <<
//! 16) | type`; it returns 1 to allow and 0 to deny. The program keeps the
//! requested access bits that no rule has decided yet in a register and
//! walks the rules last to first: a matching deny rule that names an
//! undecided bit denies; a matching allow rule decides its bits, and allows
//! once none is left; running out of rules denies. That is the per-access
//! "last matching rule wins" of [`super`].

use super::{DeviceKind, DeviceRule, ACCESS_ALL};

/// One `struct bpf_insn`: opcode, destination and source registers (4 bits
/// each), offset, immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u8,
    regs: u8,
    pub(crate) off: i16,
    pub(crate) imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        // The kernel's bitfield `dst_reg:4, src_reg:4` follows byte order.
        #[cfg(target_endian = "little")]
        let regs = (src << 4) | (dst & 0x0f);
        #[cfg(target_endian = "big")]
        let regs = (dst << 4) | (src & 0x0f);
        Insn { code, regs, off, imm }
    }

    #[cfg(test)]
    pub(crate) fn dst(&self) -> usize {
        usize::from(if cfg!(target_endian = "little") {
            self.regs & 0x0f
        } else {
            self.regs >> 4
        })
    }

    #[cfg(test)]
    pub(crate) fn src(&self) -> usize {
        usize::from(if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0x0f
        })
    }

    fn is_jump(&self) -> bool {
        matches!(self.code, JNE32_K | JEQ_K | JNE_K)
    }
}

// Opcodes (linux/bpf_common.h, linux/bpf.h): class | operation | source.
/// BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off).
pub(crate) const LDX_W: u8 = 0x61;
/// BPF_ALU64 | BPF_MOV | BPF_K: dst = imm.
pub(crate) const MOV_K: u8 = 0xb7;
/// BPF_ALU64 | BPF_MOV | BPF_X: dst = src.
pub(crate) const MOV_X: u8 = 0xbf;
/// BPF_ALU64 | BPF_AND | BPF_K: dst &= imm (sign-extended).
pub(crate) const AND_K: u8 = 0x57;
/// BPF_ALU64 | BPF_RSH | BPF_K: dst >>= imm.
pub(crate) const RSH_K: u8 = 0x77;
/// BPF_JMP32 | BPF_JNE | BPF_K: if (u32)dst != (u32)imm goto pc + 1 + off.
pub(crate) const JNE32_K: u8 = 0x56;
/// BPF_JMP | BPF_JEQ | BPF_K: if dst == imm goto pc + 1 + off.
pub(crate) const JEQ_K: u8 = 0x15;
/// BPF_JMP | BPF_JNE | BPF_K: if dst != imm goto pc + 1 + off.
pub(crate) const JNE_K: u8 = 0x55;
/// BPF_JMP | BPF_EXIT: return r0.
pub(crate) const EXIT: u8 = 0x95;

/// Return value, then the context pointer on entry and a scratch register
/// after the prologue.
const R0: u8 = 0;
const R1: u8 = 1;
/// Requested access bits not decided yet.
const R_PENDING: u8 = 2;
const R_TYPE: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

/// Device types in `access_type` (`BPF_DEVCG_DEV_*`).
const TYPE_BLOCK: i32 = 1;
const TYPE_CHAR: i32 = 2;

/// Field offsets in `struct bpf_cgroup_dev_ctx`.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;

const fn mov_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(MOV_K, dst, 0, 0, imm)
}

const fn exit() -> Insn {
    Insn::new(EXIT, 0, 0, 0, 0)
}

/// Loads the context into registers: pending = access, type, major, minor.
const PROLOGUE: [Insn; 6] = [
    Insn::new(LDX_W, R_PENDING, R1, CTX_ACCESS_TYPE, 0),
    Insn::new(MOV_X, R_TYPE, R_PENDING, 0, 0),
    Insn::new(AND_K, R_TYPE, 0, 0, 0xffff),
    Insn::new(RSH_K, R_PENDING, 0, 0, 16),
    Insn::new(LDX_W, R_MAJOR, R1, CTX_MAJOR, 0),
    Insn::new(LDX_W, R_MINOR, R1, CTX_MINOR, 0),
];

/// The program for `rules` (first to last, later rules winning).
pub(crate) fn assemble(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut program = PROLOGUE.to_vec();
    for rule in rules.iter().rev() {
        let (block, unconditional) = rule_block(rule);
        program.extend(block);
        // Nothing after an unconditional return is reachable, and the
        // verifier refuses unreachable instructions.
        if unconditional {
            return program;
        }
    }
    program.extend([mov_imm(R0, 0), exit()]);
    program
}

/// The instructions for one rule, whose jumps all go to the next rule's
/// block; and whether the rule matches every request (no jump at all).
fn rule_block(rule: &DeviceRule) -> (Vec<Insn>, bool) {
    // Jump offsets are patched once the block's length is known.
    let jne32 = |reg, value: i32| Insn::new(JNE32_K, reg, 0, 0, value);
    let mut block = Vec::new();
    if rule.kind != DeviceKind::All {
        let kind = if rule.kind == DeviceKind::Block { TYPE_BLOCK } else { TYPE_CHAR };
        block.push(jne32(R_TYPE, kind));
        // JMP32 compares the low 32 bits, so the bit pattern is what counts.
        if let Some(major) = rule.major {
            block.push(jne32(R_MAJOR, major as i32));
        }
        if let Some(minor) = rule.minor {
            block.push(jne32(R_MINOR, minor as i32));
        }
    }
    let access = rule.access as i32;
    if rule.access != ACCESS_ALL {
        // Skip the rule unless it names a pending bit.
        block.extend([
            Insn::new(MOV_X, R1, R_PENDING, 0, 0),
            Insn::new(AND_K, R1, 0, 0, access),
            Insn::new(JEQ_K, R1, 0, 0, 0),
        ]);
    }
    let unconditional = block.is_empty();
    if !rule.allow {
        block.extend([mov_imm(R0, 0), exit()]);
    } else if rule.access == ACCESS_ALL {
        block.extend([mov_imm(R0, 1), exit()]);
    } else {
        // These bits are allowed; go on deciding the rest, if any.
        block.extend([
            Insn::new(AND_K, R_PENDING, 0, 0, !access),
            Insn::new(JNE_K, R_PENDING, 0, 0, 0),
            mov_imm(R0, 1),
            exit(),
        ]);
    }
    let len = block.len();
    for (i, insn) in block.iter_mut().enumerate() {
        if insn.is_jump() {
            // At most a dozen instructions: the offset always fits.
            insn.off = (len - i - 1) as i16;
        }
    }
    (block, unconditional)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::{allow, permits, DeviceRule, ACCESS_MKNOD, ACCESS_READ, ACCESS_WRITE, DENY_ALL};
    use super::*;

    /// Runs `program` as the kernel would for one request. Knows only the
    /// instructions `assemble` emits.
    pub(crate) fn run(program: &[Insn], kind: DeviceKind, major: u32, minor: u32, access: u32) -> u64 {
        let type_code = match kind {
            DeviceKind::Block => TYPE_BLOCK as u32,
            _ => TYPE_CHAR as u32,
        };
        let ctx = [(access << 16) | type_code, major, minor];
        let mut regs = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let insn = program[pc];
            let (dst, src, imm) = (insn.dst(), insn.src(), i64::from(insn.imm) as u64);
            let mut jump = false;
            match insn.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    regs[dst] = u64::from(ctx[insn.off as usize / 4]);
                }
                MOV_K => regs[dst] = imm,
                MOV_X => regs[dst] = regs[src],
                AND_K => regs[dst] &= imm,
                RSH_K => regs[dst] >>= imm,
                JNE32_K => jump = regs[dst] as u32 != insn.imm as u32,
                JEQ_K => jump = regs[dst] == imm,
                JNE_K => jump = regs[dst] != imm,
                EXIT => return regs[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1;
            if jump {
                pc += insn.off as usize;
            }
        }
    }

    /// What the verifier checks of the control flow: jumps stay inside,
    /// the last instruction exits, every instruction is reachable.
    fn assert_well_formed(program: &[Insn]) {
        assert_eq!(program.last().map(|i| i.code), Some(EXIT));
        let mut reachable = vec![false; program.len()];
        let mut todo = vec![0usize];
        while let Some(pc) = todo.pop() {
            if std::mem::replace(&mut reachable[pc], true) {
                continue;
            }
            let insn = program[pc];
            if insn.code == EXIT {
                continue;
            }
            todo.push(pc + 1);
            if insn.is_jump() {
                let target = pc + 1 + insn.off as usize;
                assert!(insn.off >= 0 && target < program.len(), "jump at {pc} leaves the program");
                todo.push(target);
            }
        }
        assert!(reachable.iter().all(|r| *r), "unreachable instructions: {reachable:?}");
    }

    /// Checks the program against the reference meaning on many requests.
    fn assert_program_means(rules: &[DeviceRule]) {
        let program = assemble(rules);
        assert_well_formed(&program);
        for kind in [DeviceKind::Char, DeviceKind::Block] {
            for (major, minor) in [(1, 3), (1, 5), (1, 9), (5, 0), (8, 0), (136, 4), (4_000_000_000, 7)] {
                for access in 1..=ACCESS_ALL {
                    assert_eq!(
                        run(&program, kind, major, minor, access) == 1,
                        permits(rules, kind, major, minor, access),
                        "{kind:?} {major}:{minor} access {access} under {rules:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn encodes_registers_in_the_kernel_layout() {
        let insn = Insn::new(MOV_X, 3, 2, 0, 0);
        assert_eq!((insn.dst(), insn.src()), (3, 2));
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        #[cfg(target_endian = "little")]
        assert_eq!(insn.regs, 0x23);
    }

    #[test]
    fn deny_all_is_a_single_return() {
        let program = assemble(&[DENY_ALL]);
        assert_eq!(&program[PROLOGUE.len()..], &[mov_imm(R0, 0), exit()]);
        assert_eq!(run(&program, DeviceKind::Char, 1, 3, ACCESS_READ), 0);
    }

    #[test]
    fn rules_before_an_unconditional_one_are_dropped() {
        let allow_all = DeviceRule { allow: true, ..DENY_ALL };
        let program = assemble(&[DENY_ALL, allow(DeviceKind::Char, Some(1), Some(3), ACCESS_READ), allow_all]);
        assert_eq!(program.len(), PROLOGUE.len() + 2);
        assert_program_means(&[DENY_ALL, allow_all]);
    }

    #[test]
    fn programs_mean_what_the_rules_say() {
        let deny = |r: DeviceRule| DeviceRule { allow: false, ..r };
        let lists: Vec<Vec<DeviceRule>> = vec![
            super::super::effective_rules(&[]).unwrap(),
            vec![DENY_ALL, allow(DeviceKind::Char, Some(1), Some(3), ACCESS_ALL)],
            vec![
                DENY_ALL,
                allow(DeviceKind::Char, Some(1), None, ACCESS_READ | ACCESS_WRITE),
                deny(allow(DeviceKind::Char, Some(1), Some(5), ACCESS_WRITE)),
                allow(DeviceKind::Char, Some(1), Some(3), ACCESS_MKNOD),
            ],
            vec![
                allow(DeviceKind::All, None, None, ACCESS_READ),
                deny(allow(DeviceKind::Block, None, Some(0), ACCESS_READ)),
                allow(DeviceKind::Char, Some(4_000_000_000), None, ACCESS_WRITE),
            ],
            vec![deny(allow(DeviceKind::All, None, None, ACCESS_WRITE))],
            vec![],
        ];
        for rules in lists {
            assert_program_means(&rules);
        }
    }

    #[test]
    fn random_rule_lists_agree_with_the_reference() {
        // A small LCG keeps this deterministic without a dependency.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        for _ in 0..200 {
            let len = next(6) as usize;
            let rules: Vec<DeviceRule> = (0..len)
                .map(|_| DeviceRule {
                    allow: next(2) == 0,
                    kind: [DeviceKind::All, DeviceKind::Char, DeviceKind::Block][next(3) as usize],
                    major: [None, Some(1), Some(8)][next(3) as usize],
                    minor: [None, Some(0), Some(3), Some(5)][next(4) as usize],
                    access: 1 + next(7) as u32,
                })
                .collect();
            assert_program_means(&rules);
        }
    }
}
