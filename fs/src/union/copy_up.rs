//! Copy-up: bringing a lower file or directory into the upper layer
//! before it changes, atomically through the work directory so that no
//! partial copy is ever visible in the upper.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::copy::copy_metadata;

/// The writable side of a union: the upper directory and its work
/// directory (same filesystem, so a rename moves a finished copy in).
pub struct Upper {
    pub dir: PathBuf,
    pub work: PathBuf,
    next: AtomicU64,
    /// Whether copies are flushed to disk before they are renamed into
    /// place (off for a volatile mount).
    pub durable: bool,
    /// The upper is on journalled ext4 in data=ordered mode: see
    /// [`ordered_ext4`].
    ordered: bool,
}

/// Whether `dir` is on ext4 with a journal in data=ordered mode. There a
/// file's newly allocated data reaches the disk before the journal
/// transaction that allocated it commits, and so before any later change
/// (the rename that puts a copy in place) can: starting the copy's
/// writeback before the rename is as safe as an fsync, without waiting
/// for the disk.
pub fn ordered_ext4(dir: &Path) -> bool {
    let Ok(m) = std::fs::metadata(dir) else { return false };
    let (major, minor) = (libc::major(m.dev()), libc::minor(m.dev()));
    let Ok(device) = std::fs::read_link(format!("/sys/dev/block/{major}:{minor}")) else {
        return false;
    };
    let Some(name) = device.file_name() else { return false };
    let options = std::fs::read_to_string(Path::new("/proc/fs/ext4").join(name).join("options")).unwrap_or_default();
    options.lines().any(|l| l.trim() == "data=ordered")
}

impl Upper {
    pub fn new(dir: PathBuf, work: PathBuf) -> Upper {
        Upper {
            ordered: ordered_ext4(&dir),
            dir,
            work,
            next: AtomicU64::new(0),
            durable: true,
        }
    }

    /// Removes what an interrupted copy-up or mkdir left in the work
    /// directory (called before mounting: nothing there is ever visible).
    pub fn clean_work(&self) -> io::Result<()> {
        for e in std::fs::read_dir(&self.work)? {
            let p = e?.path();
            if p.symlink_metadata()?.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else {
                std::fs::remove_file(&p)?;
            }
        }
        Ok(())
    }

    fn scratch(&self) -> PathBuf {
        self.work.join(format!(
            "copyup-{}-{}",
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Copies `src` (a lower entry, described by `meta`) to `target` in the
    /// upper directory, whose parent exists. Directories are copied empty;
    /// a file's data only with `data` (a file about to be truncated needs
    /// none).
    pub fn copy_one(&self, src: &Path, meta: &std::fs::Metadata, target: &Path, data: bool) -> io::Result<()> {
        let tmp = self.scratch();
        let ft = meta.file_type();
        let result = (|| {
            if ft.is_dir() {
                std::fs::create_dir(&tmp)?;
            } else if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(src)?, &tmp)?;
            } else if ft.is_file() {
                let mut to = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
                if data {
                    io::copy(&mut std::fs::File::open(src)?, &mut to)?;
                    if self.durable && self.ordered {
                        // Allocates the blocks now, in the running journal
                        // transaction, which cannot commit before them.
                        // SAFETY: an fd we hold open; integer arguments only.
                        if unsafe { libc::sync_file_range(std::os::fd::AsRawFd::as_raw_fd(&to), 0, 0, libc::SYNC_FILE_RANGE_WRITE) } != 0 {
                            to.sync_all()?;
                        }
                    } else if self.durable {
                        to.sync_all()?;
                    }
                }
            } else {
                let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
                nix::sys::stat::mknod(&tmp, kind, nix::sys::stat::Mode::from_bits_truncate(0o600), meta.rdev())?;
            }
            copy_metadata(src, &tmp, meta)?;
            // A whiteout at the target (left by an earlier delete) is replaced.
            if let Ok(m) = target.symlink_metadata() {
                if super::is_whiteout_meta(&m) {
                    std::fs::remove_file(target)?;
                }
            }
            std::fs::rename(&tmp, target)
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp).or_else(|_| std::fs::remove_file(&tmp));
        }
        result
    }
}

/// Removes every whiteout (both forms) in the upper tree at `dir`, for a
/// tree with nothing below it. Opaque markers stay.
pub fn purge_whiteouts(dir: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let kind = e.file_type()?;
        let wh_file = std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str())
            .starts_with(crate::layer::whiteout::WHITEOUT_PREFIX.as_bytes())
            && name != crate::layer::whiteout::OPAQUE_MARKER;
        if wh_file || (std::os::unix::fs::FileTypeExt::is_char_device(&kind) && super::is_whiteout_meta(&e.metadata()?)) {
            std::fs::remove_file(e.path())?;
        } else if kind.is_dir() {
            purge_whiteouts(&e.path())?;
        }
    }
    Ok(())
}
