//! Copy-up: bringing a lower file or directory into the upper layer
//! before it changes, atomically through the work directory so that no
//! partial copy is ever visible in the upper.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::layers::Layers;
use crate::copy::copy_metadata;

/// The writable side of a union: the upper directory and its work
/// directory (same filesystem, so a rename moves a finished copy in).
pub struct Upper {
    pub dir: PathBuf,
    pub work: PathBuf,
    next: AtomicU64,
}

impl Upper {
    pub fn new(dir: PathBuf, work: PathBuf) -> Upper {
        Upper {
            dir,
            work,
            next: AtomicU64::new(0),
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

    /// Makes sure `rel` (and its parents) exist in the upper layer, copying
    /// them up from the layer they are visible in.
    pub fn copy_up(&self, layers: &Layers, rel: &Path) -> io::Result<()> {
        let mut prefix = PathBuf::new();
        for comp in rel.iter() {
            prefix.push(comp);
            let target = self.dir.join(&prefix);
            if target.symlink_metadata().is_ok_and(|m| !super::is_whiteout_meta(&m)) {
                continue;
            }
            let found = layers.find(&prefix)?.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            self.copy_one(&found.path, &found.meta, &target)?;
        }
        Ok(())
    }

    fn copy_one(&self, src: &Path, meta: &std::fs::Metadata, target: &Path) -> io::Result<()> {
        let tmp = self.scratch();
        let ft = meta.file_type();
        let result = (|| {
            if ft.is_dir() {
                std::fs::create_dir(&tmp)?;
            } else if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(src)?, &tmp)?;
            } else if ft.is_file() {
                let mut from = std::fs::File::open(src)?;
                let mut to = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
                io::copy(&mut from, &mut to)?;
                to.sync_all()?;
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
