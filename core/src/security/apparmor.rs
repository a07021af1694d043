//! AppArmor: detecting it and switching the container process to its
//! profile at exec.
//!
//! This module applies an already-loaded profile; it does not write or load
//! profiles (the engine does that where the kernel has AppArmor).

use std::io::Write;

/// The kernel reports AppArmor as enabled with "Y" here.
pub const ENABLED_FILE: &str = "/sys/module/apparmor/parameters/enabled";
/// Present when AppArmor's securityfs interface is mounted.
const SECURITYFS_DIR: &str = "/sys/kernel/security/apparmor";

/// Whether this kernel runs AppArmor.
pub fn enabled() -> bool {
    std::fs::read(ENABLED_FILE).is_ok_and(|v| v.first() == Some(&b'Y')) && std::path::Path::new(SECURITYFS_DIR).exists()
}

/// Asks the kernel to confine this thread with `profile` at its next
/// execve, as libapparmor's aa_change_onexec does. The LSM-stacking
/// interface (`attr/apparmor/exec`, Linux 5.8+) is tried first.
pub fn change_onexec(profile: &str) -> std::io::Result<()> {
    let request = format!("exec {profile}");
    let mut last = None;
    for attr in ["/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec"] {
        match std::fs::OpenOptions::new().write(true).open(attr) {
            Ok(mut f) => {
                // Only procfs may receive the request: anything else mounted
                // over /proc would silently leave the process unconfined.
                let fs = nix::sys::statfs::fstatfs(&f).map_err(std::io::Error::from)?;
                if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
                    return Err(std::io::Error::other(format!("{attr} is not on procfs")));
                }
                return f.write_all(request.as_bytes());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no AppArmor attr file")))
}
