//! The two bpf(2) calls behind the v2 device controller: load a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, attach it to a cgroup directory.
//!
//! Programs are attached with `BPF_F_ALLOW_MULTI`: a container that runs
//! its own runtime can then attach programs in its sub-cgroups, and the
//! kernel allows an access only if every program on the way up allows it,
//! so nothing below can widen what we allow. An attached program stays
//! with the cgroup after its fd closes and goes when the cgroup is removed.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::program::Insn;

/// bpf(2) commands (enum bpf_cmd in linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
/// enum bpf_prog_type.
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// enum bpf_attach_type.
const BPF_CGROUP_DEVICE: u32 = 6;
/// Attach flag: several programs per cgroup, all of them run.
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// The kernel insists on a GPL-compatible licence for helpers we do not
/// use; say GPL anyway, as every device program does.
const LICENSE: &std::ffi::CStr = c"GPL";
/// Shown by `bpftool prog` (at most 15 bytes and a NUL).
const PROGRAM_NAME: &[u8] = b"berth_devices";
/// Room for the verifier's explanation when a load fails.
const LOG_SIZE: usize = 64 * 1024;

/// `union bpf_attr` as BPF_PROG_LOAD reads it, up to the fields we set; the
/// kernel takes a shorter attr and treats the rest as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` as BPF_PROG_ATTACH reads it.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Loads `program` as a cgroup device program. On failure returns the
/// error and the verifier's log (empty when there is none).
pub(crate) fn load(program: &[Insn]) -> Result<OwnedFd, (io::Error, String)> {
    match load_with_log(program, None) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            // Load again, asking the verifier to explain itself.
            let mut log = vec![0u8; LOG_SIZE];
            let again = load_with_log(program, Some(&mut log));
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).into_owned();
            Err((again.err().unwrap_or(first), text))
        }
    }
}

fn load_with_log(program: &[Insn], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    let mut name = [0u8; 16];
    name[..PROGRAM_NAME.len()].copy_from_slice(PROGRAM_NAME);
    let insn_cnt = u32::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let (log_level, log_size, log_buf) = match log {
        Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt,
        insns: program.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        prog_name: name,
        ..ProgLoadAttr::default()
    };
    // SAFETY: `attr` is a valid bpf_attr prefix whose size we pass; the
    // instruction array, licence string and log buffer it points to outlive
    // the call, and the kernel writes at most `log_size` bytes to the log.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the loaded `program` to the cgroup directory `cgroup_dir`.
pub(crate) fn attach(program: &OwnedFd, cgroup_dir: &Path) -> io::Result<()> {
    let dir = File::open(cgroup_dir)?;
    let attr = ProgAttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..ProgAttachAttr::default()
    };
    // SAFETY: `attr` is a valid bpf_attr prefix whose size we pass, and both
    // fds in it stay open for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttachAttr,
            std::mem::size_of::<ProgAttachAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_have_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::size_of::<ProgAttachAttr>(), 20);
        assert!(PROGRAM_NAME.len() < 16);
    }

    #[test]
    fn a_bad_program_comes_back_with_the_verifier_log() {
        if !crate::runtime::cgroups::testing::require_root("a_bad_program_comes_back_with_the_verifier_log") {
            return;
        }
        // No `exit`: the verifier refuses to fall off the end.
        let program = super::super::program::assemble(&[]);
        let truncated = &program[..program.len() - 1];
        let (err, log) = load(truncated).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        assert!(!log.is_empty());
    }
}
