//! Resolving paths inside the container's root filesystem without ever
//! leaving it.
//!
//! Two layers: [`resolve`] walks a path the way the container will see it
//! (absolute symlinks restart at the rootfs, as they will after
//! pivot_root) and refuses a relative symlink or `..` that climbs above the
//! rootfs, a sign of a hostile bundle. The returned path is then only ever
//! opened with openat2(RESOLVE_IN_ROOT), so even a rootfs that changes under
//! us cannot redirect an open outside it (the class of runc CVEs
//! 2021-30465, 2024-21626, 2025-31133).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::sys;

/// Linux's own limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;

/// Why a path cannot be resolved inside the rootfs.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{path} leads outside the container's rootfs{}", via.as_ref().map(|v| format!(" through symlink {v}")).unwrap_or_default())]
    Escapes { path: PathBuf, via: Option<String> },
    #[error("{path}: too many levels of symbolic links")]
    Loop { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Resolves `path` (absolute, as the container sees it) inside `root`,
/// following symlinks the way the container will. Returns the symlink-free
/// path relative to the root ("" for the root itself). Missing trailing
/// components are kept as they are.
pub fn resolve(root: &Path, path: &Path) -> Result<PathBuf, ResolveError> {
    let mut done: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: Vec<std::ffi::OsString> = components(path);
    todo.reverse();
    let mut links = 0;
    let mut via: Option<String> = None;
    while let Some(c) = todo.pop() {
        if c == ".." {
            if done.pop().is_none() {
                return Err(ResolveError::Escapes {
                    path: path.to_path_buf(),
                    via,
                });
            }
            continue;
        }
        let candidate: PathBuf = root.join(done.iter().collect::<PathBuf>()).join(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(ResolveError::Loop { path: path.to_path_buf() });
                }
                let target = std::fs::read_link(&candidate).map_err(|source| ResolveError::Io {
                    path: candidate.clone(),
                    source,
                })?;
                via = Some(format!(
                    "/{} -> {}",
                    done.iter().collect::<PathBuf>().join(&c).display(),
                    target.display()
                ));
                if target.is_absolute() {
                    done.clear();
                }
                let mut more = components(&target);
                more.reverse();
                todo.extend(more);
            }
            Ok(_) => done.push(c),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The rest does not exist yet: no more symlinks to follow,
                // but `..` may still appear and must be handled above.
                done.push(c);
            }
            Err(source) => return Err(ResolveError::Io { path: candidate, source }),
        }
    }
    Ok(done.iter().collect())
}

/// The normal components of `path` ("." dropped, ".." kept).
fn components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// openat2 flags that keep a lookup inside `root_fd`.
const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// Opens `rel` (relative to the root, already resolved) under `root_fd`.
pub fn open_in_root(root_fd: &OwnedFd, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    sys::openat2(root_fd.as_raw_fd(), rel, flags, 0, IN_ROOT)
}

fn mkdirat(dir: &OwnedFd, name: &OsStr, mode: u32) -> io::Result<()> {
    let c = CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: dir is an open directory fd and c a valid C string.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) } < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(e);
        }
    }
    Ok(())
}

/// What to create at a mount point that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Makes sure `path` exists inside the rootfs (creating parents as
/// directories and the last component as `kind`) and returns an O_PATH fd
/// for it. Every step is opened with RESOLVE_IN_ROOT.
pub fn ensure_in_root(root: &Path, root_fd: &OwnedFd, path: &Path, kind: Kind) -> Result<OwnedFd, ResolveError> {
    let rel = resolve(root, path)?;
    let io_err = |source| ResolveError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(fd) = open_in_root(root_fd, &rel, libc::O_PATH) {
        return Ok(fd);
    }
    let names: Vec<&OsStr> = rel.iter().collect();
    let Some((last, parents)) = names.split_last() else {
        return open_in_root(root_fd, &rel, libc::O_PATH).map_err(io_err);
    };
    let mut dir = open_in_root(root_fd, Path::new("."), libc::O_PATH | libc::O_DIRECTORY).map_err(io_err)?;
    let mut so_far = PathBuf::new();
    for name in parents {
        mkdirat(&dir, name, 0o755).map_err(io_err)?;
        so_far.push(name);
        dir = open_in_root(root_fd, &so_far, libc::O_PATH | libc::O_DIRECTORY).map_err(io_err)?;
    }
    so_far.push(last);
    match kind {
        Kind::Dir => mkdirat(&dir, last, 0o755).map_err(io_err)?,
        Kind::File => {
            let f = sys::openat2(
                root_fd.as_raw_fd(),
                &so_far,
                libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW,
                0o644,
                IN_ROOT,
            );
            match f {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(e)),
            }
        }
    }
    open_in_root(root_fd, &so_far, libc::O_PATH).map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_symlinks_stay_inside_relative_escapes_fail() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("run")).unwrap();
        std::fs::create_dir_all(r.join("var")).unwrap();
        symlink("/run", r.join("var/run")).unwrap();
        symlink("../../../../../../etc", r.join("evil")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        assert_eq!(resolve(r, Path::new("/var/run/x")).unwrap(), PathBuf::from("run/x"));
        assert_eq!(resolve(r, Path::new("/a/../b")).unwrap(), PathBuf::from("b"));
        assert_eq!(resolve(r, Path::new("/")).unwrap(), PathBuf::new());
        let e = resolve(r, Path::new("/evil/passwd")).unwrap_err().to_string();
        assert!(e.contains("outside") && e.contains("evil"), "{e}");
        assert!(resolve(r, Path::new("/../etc")).is_err());
        assert!(matches!(resolve(r, Path::new("/loop")), Err(ResolveError::Loop { .. })));
    }

    #[test]
    fn ensure_creates_inside() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir(r.join("run")).unwrap();
        symlink("/run", r.join("varrun")).unwrap();
        let root_fd = sys::openat2(libc::AT_FDCWD, r, libc::O_PATH | libc::O_DIRECTORY, 0, 0).unwrap();
        ensure_in_root(r, &root_fd, Path::new("/varrun/a/b"), Kind::Dir).unwrap();
        assert!(r.join("run/a/b").is_dir());
        ensure_in_root(r, &root_fd, Path::new("/etc/hosts"), Kind::File).unwrap();
        assert!(r.join("etc/hosts").is_file());
    }
}
