//! The container side of `docker cp` and `docker export`, run by the
//! `berth-archive` helper chrooted into the container's root filesystem:
//! every path, and every symlink a running container may swap under it,
//! resolves inside that root, because the root is all this process sees.
//! berthd never follows a container's paths itself.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// What went wrong; `missing` ones are Docker's 404s.
#[derive(Debug)]
pub struct ArchiveError {
    pub missing: bool,
    pub message: String,
}

fn err(message: impl Into<String>) -> ArchiveError {
    ArchiveError {
        missing: false,
        message: message.into(),
    }
}

/// Makes `rootfs` this process's root. Call before anything else.
pub fn enter(rootfs: &Path) -> Result<(), ArchiveError> {
    nix::unistd::chroot(rootfs).map_err(|e| err(format!("chroot {}: {e}", rootfs.display())))?;
    nix::unistd::chdir("/").map_err(|e| err(format!("chdir /: {e}")))
}

/// A path from the container's root (a relative one is taken from `/`,
/// as Docker's daemon does).
fn absolute(path: &str) -> Result<PathBuf, ArchiveError> {
    if path.is_empty() {
        return Err(err("no path given"));
    }
    Ok(Path::new("/").join(path))
}

/// A trailing `/` or `/.` follows the last component; else a symlink is
/// the link itself, as `docker cp` copies it.
fn follows_last(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.")
}

/// Docker's path stat: Go's FileMode bits (type flags high, permissions low).
pub fn stat(path: &str) -> Result<Value, ArchiveError> {
    let p = absolute(path)?;
    let m = if follows_last(path) {
        std::fs::metadata(&p)
    } else {
        std::fs::symlink_metadata(&p)
    }
    .map_err(|e| ArchiveError {
        missing: e.kind() == std::io::ErrorKind::NotFound,
        message: format!("Could not find the file {path} in container: {e}"),
    })?;
    let ft = m.file_type();
    let mut mode = m.mode() & 0o777;
    if ft.is_dir() {
        mode |= 1 << 31;
    } else if ft.is_symlink() {
        mode |= 1 << 27;
    }
    if m.mode() & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if m.mode() & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    let link = if ft.is_symlink() {
        std::fs::read_link(&p).map(|l| l.display().to_string()).unwrap_or_default()
    } else {
        String::new()
    };
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    Ok(json!({ "name": name, "size": m.len(), "mode": mode, "mtime": crate::time::rfc3339(m.mtime()), "linkTarget": link }))
}

/// Writes a tarball of `path` (named by its last component, `.` for a
/// path ending in `/.`) to `out`; `None` packs the whole root as `.`.
pub fn pack(path: Option<&str>, out: impl Write) -> Result<(), ArchiveError> {
    let mut t = tar::Builder::new(std::io::BufWriter::with_capacity(64 * 1024, out));
    t.follow_symlinks(false);
    let done = match path {
        None => t.append_dir_all(".", "/"),
        Some(p) => {
            stat(p)?;
            let src = absolute(p)?;
            let name = if p.ends_with("/.") {
                ".".to_string()
            } else {
                src.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| ".".into())
            };
            let is_dir = if follows_last(p) {
                src.is_dir()
            } else {
                std::fs::symlink_metadata(&src).is_ok_and(|m| m.is_dir())
            };
            if is_dir && name == "." {
                dot_tree(&mut t, &src, Path::new("."))
            } else if is_dir {
                t.append_dir_all(&name, &src)
            } else {
                t.append_path_with_name(&src, &name)
            }
        }
    };
    done.and_then(|_| t.into_inner().and_then(|mut w| w.flush()))
        .map_err(|e| err(format!("pack: {e}")))
}

/// A directory's contents named `./...`, as Docker's archive of `DIR/.`
/// has them (the docker CLI renames that `.` to its destination); the
/// tar crate would drop the leading `./` from names it sets itself.
fn dot_tree<W: Write>(t: &mut tar::Builder<W>, dir: &Path, rel: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    dot_entry(t, dir, rel, &meta)?;
    let mut names: Vec<_> = std::fs::read_dir(dir)?.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for n in names {
        let (path, child) = (dir.join(&n), rel.join(&n));
        let m = std::fs::symlink_metadata(&path)?;
        if m.is_dir() {
            dot_tree(t, &path, &child)?;
        } else {
            dot_entry(t, &path, &child, &m)?;
        }
    }
    Ok(())
}

fn dot_entry<W: Write>(t: &mut tar::Builder<W>, path: &Path, rel: &Path, meta: &std::fs::Metadata) -> std::io::Result<()> {
    let mut name = rel.display().to_string();
    if meta.is_dir() {
        name.push('/');
    }
    if name.len() > 99 {
        // Too long for the plain name field: the tar crate writes it (as a
        // GNU long name, without the leading `./`).
        return if meta.is_dir() {
            t.append_dir(rel, path)
        } else {
            t.append_path_with_name(path, rel)
        };
    }
    let mut h = tar::Header::new_gnu();
    h.set_metadata(meta);
    {
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
    }
    if meta.file_type().is_symlink() {
        h.set_link_name(std::fs::read_link(path)?)?;
    }
    h.set_cksum();
    if meta.is_file() {
        t.append(&h, std::fs::File::open(path)?)
    } else {
        t.append(&h, std::io::empty())
    }
}

/// Unpacks the tarball read from `input` into the directory `path`.
pub fn unpack(path: &str, input: impl Read) -> Result<(), ArchiveError> {
    let dst = absolute(path)?;
    if !dst.is_dir() {
        return Err(ArchiveError {
            missing: true,
            message: format!("Could not find the directory {path} in container (or it is not a directory)"),
        });
    }
    let mut a = tar::Archive::new(input);
    a.set_preserve_permissions(true);
    a.set_overwrite(true);
    for entry in a.entries().map_err(|e| err(format!("reading the archive: {e}")))? {
        let mut entry = entry.map_err(|e| err(format!("reading the archive: {e}")))?;
        match entry.unpack_in(&dst) {
            Ok(true) => {}
            Ok(false) => return Err(err("an archive entry points outside the directory")),
            Err(e) => return Err(err(format!("unpack into {path}: {e}"))),
        }
    }
    Ok(())
}
