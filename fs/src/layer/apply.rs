//! Applying an OCI layer tarball (uncompressed, gzip or zstd) to a new
//! layer directory, as a stream, computing its diffID on the way.
//!
//! Every entry name is checked before anything is written: absolute names,
//! `..`, a parent that is a symlink and a hard link to anything outside the
//! layer are refused with an error naming the entry. The layer is built in
//! a sibling `.partial` directory and renamed into place only when
//! complete, so a failed apply leaves no half layer.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::whiteout::{make_whiteout, WhiteoutFormat, OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};
use super::LayerError;
use crate::digest::{Digest, HashingReader};

/// What an apply produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// sha256 of the uncompressed tar stream (the layer's diffID).
    pub diff_id: Digest,
    /// Size of the uncompressed stream.
    pub size: u64,
}

/// The compression of a layer stream, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// Applies the layer read from `input` into the new directory `dest`
/// (which must not exist), writing whiteouts in `whiteouts` format.
pub fn apply_layer(input: impl Read, dest: &Path, whiteouts: WhiteoutFormat) -> Result<Applied, LayerError> {
    if dest.exists() {
        return Err(LayerError::Io {
            op: "apply layer",
            path: dest.to_path_buf(),
            error: io::Error::from(io::ErrorKind::AlreadyExists),
        });
    }
    let partial = partial_path(dest);
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| LayerError::io("create", &partial, e))?;
    let result = apply_into(input, &partial, whiteouts);
    match result {
        Ok(applied) => {
            std::fs::rename(&partial, dest).map_err(|e| LayerError::io("rename layer", dest, e))?;
            Ok(applied)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(e)
        }
    }
}

/// The work directory of a layer being applied.
pub fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or(OsStr::new("layer")).to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

/// Applies the layer read from `input` onto the existing directory `root`
/// in place (not atomic: for a directory that is itself still being built,
/// such as a `vfs` layer's copy).
pub fn apply_onto(input: impl Read, root: &Path, whiteouts: WhiteoutFormat) -> Result<Applied, LayerError> {
    apply_into(input, root, whiteouts)
}

/// The uncompressed stream of a layer tarball that may be plain, gzip or
/// zstd (told apart by its first bytes).
pub fn decompressed<'a>(input: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::new(input);
    let head = buffered.fill_buf()?;
    Ok(match Compression::sniff(head) {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    })
}

/// Whether the stream starts as a compressed one.
pub fn is_compressed(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)?.read(&mut head)?;
    Ok(Compression::sniff(&head[..n]) != Compression::None)
}

fn apply_into(input: impl Read, root: &Path, whiteouts: WhiteoutFormat) -> Result<Applied, LayerError> {
    let decompressed = decompressed(input).map_err(|e| LayerError::io("read layer", root, e))?;
    let mut hashing = HashingReader::new(decompressed);
    let mut dirs: Vec<(PathBuf, i64, i64)> = Vec::new();
    // What this layer itself wrote, which an opaque marker must keep.
    let mut created: HashSet<PathBuf> = HashSet::new();
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive.entries().map_err(|e| LayerError::io("read tar", root, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| LayerError::io("read tar entry", root, e))?;
            if let Some(dir) = apply_entry(&mut entry, root, whiteouts, &mut created)? {
                dirs.push(dir);
            }
        }
    }
    // Trailing padding belongs to the stream the diffID covers.
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| LayerError::io("read layer", root, e))?;
    // Directory times last: creating their children changed them.
    for (path, secs, nsecs) in dirs.iter().rev() {
        set_times(path, *secs, *nsecs).map_err(|e| LayerError::io("set times", path, e))?;
    }
    let (diff_id, size) = hashing.finish();
    Ok(Applied { diff_id, size })
}

/// The clean relative path of an entry name; refuses absolute names and `..`.
pub fn clean_name(raw: &Path, entry: &str) -> Result<PathBuf, LayerError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(LayerError::unsafe_entry(entry, "absolute path")),
            Component::ParentDir => return Err(LayerError::unsafe_entry(entry, "'..' in path")),
        }
    }
    Ok(out)
}

/// Creates the missing parents of `rel` under `root`, refusing a parent
/// that is a symlink (it could lead outside the layer) or not a directory.
fn prepare_parents(root: &Path, rel: &Path, entry: &str) -> Result<(), LayerError> {
    let mut cur = root.to_path_buf();
    let parent = rel.parent().unwrap_or(Path::new(""));
    for c in parent.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(LayerError::unsafe_entry(
                    entry,
                    &format!("parent {} is a symlink", cur.strip_prefix(root).unwrap_or(&cur).display()),
                ))
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(LayerError::unsafe_entry(
                    entry,
                    &format!("parent {} is not a directory", cur.strip_prefix(root).unwrap_or(&cur).display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&cur).map_err(|e| LayerError::io("mkdir", &cur, e))?,
            Err(e) => return Err(LayerError::io("stat", &cur, e)),
        }
    }
    Ok(())
}

/// Removes whatever is at `path` unless it is a directory that a directory
/// entry may keep.
fn clear(path: &Path, keep_dir: bool) -> Result<(), LayerError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && keep_dir => Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(|e| LayerError::io("replace", path, e)),
        Ok(_) => std::fs::remove_file(path).map_err(|e| LayerError::io("replace", path, e)),
        Err(_) => Ok(()),
    }
}

type DirTimes = (PathBuf, i64, i64);

fn apply_entry<R: Read>(
    entry: &mut tar::Entry<R>,
    root: &Path,
    whiteouts: WhiteoutFormat,
    created: &mut HashSet<PathBuf>,
) -> Result<Option<DirTimes>, LayerError> {
    let raw = entry.path().map_err(|e| LayerError::io("entry name", root, e))?.into_owned();
    let name = raw.display().to_string();
    let rel = clean_name(&raw, &name)?;
    let path = root.join(&rel);
    let header = entry.header().clone();
    let kind = header.entry_type();
    if rel.as_os_str().is_empty() {
        // The layer root itself: only its metadata applies.
        if kind.is_dir() {
            apply_metadata(entry, &path, &header)?;
            return Ok(Some((path, header.mtime().unwrap_or(0) as i64, 0)));
        }
        return Err(LayerError::unsafe_entry(&name, "the layer root must be a directory"));
    }
    prepare_parents(root, &rel, &name)?;
    let base = rel.file_name().map(OsStr::as_bytes).unwrap_or_default();
    if let Some(target) = base.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        return apply_whiteout(root, &rel, target, whiteouts, &name, created).map(|_| None);
    }
    created.insert(rel.clone());
    match kind {
        EntryType::Directory => {
            clear(&path, true)?;
            if !path.exists() {
                std::fs::create_dir(&path).map_err(|e| LayerError::io("mkdir", &path, e))?;
            }
        }
        EntryType::Regular | EntryType::Continuous => {
            clear(&path, false)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| LayerError::io("create", &path, e))?;
            io::copy(entry, &mut f).map_err(|e| LayerError::io("write", &path, e))?;
        }
        EntryType::Symlink => {
            clear(&path, false)?;
            let target = header
                .link_name()
                .map_err(|e| LayerError::io("link name", &path, e))?
                .ok_or_else(|| LayerError::unsafe_entry(&name, "symlink without a target"))?;
            std::os::unix::fs::symlink(&target, &path).map_err(|e| LayerError::io("symlink", &path, e))?;
        }
        EntryType::Link => {
            let target = header
                .link_name()
                .map_err(|e| LayerError::io("link name", &path, e))?
                .ok_or_else(|| LayerError::unsafe_entry(&name, "hard link without a target"))?;
            let target_rel = clean_name(&target, &name)
                .map_err(|_| LayerError::unsafe_entry(&name, &format!("hard link to {} leads outside the layer", target.display())))?;
            prepare_parents(root, &target_rel, &name)?;
            let source = root.join(&target_rel);
            if std::fs::symlink_metadata(&source).is_err() {
                return Err(LayerError::unsafe_entry(
                    &name,
                    &format!("hard link to {} which is not in the layer", target.display()),
                ));
            }
            clear(&path, false)?;
            std::fs::hard_link(&source, &path).map_err(|e| LayerError::io("link", &path, e))?;
            // A hard link shares the target's metadata; nothing more to set.
            return Ok(None);
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            clear(&path, false)?;
            let flag = match kind {
                EntryType::Char => nix::sys::stat::SFlag::S_IFCHR,
                EntryType::Block => nix::sys::stat::SFlag::S_IFBLK,
                _ => nix::sys::stat::SFlag::S_IFIFO,
            };
            let dev = libc::makedev(
                header.device_major().ok().flatten().unwrap_or(0),
                header.device_minor().ok().flatten().unwrap_or(0),
            );
            nix::sys::stat::mknod(&path, flag, nix::sys::stat::Mode::from_bits_truncate(0o600), dev)
                .map_err(|e| LayerError::io("mknod", &path, e.into()))?;
        }
        // PAX and GNU extension headers are folded into entries by the reader.
        EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink => return Ok(None),
        other => return Err(LayerError::unsafe_entry(&name, &format!("unsupported entry type {other:?}"))),
    }
    apply_metadata(entry, &path, &header)?;
    let mtime = header.mtime().unwrap_or(0) as i64;
    if kind == EntryType::Directory {
        return Ok(Some((path, mtime, 0)));
    }
    set_times(&path, mtime, 0).map_err(|e| LayerError::io("set times", &path, e))?;
    Ok(None)
}

fn apply_whiteout(
    root: &Path,
    rel: &Path,
    target: &[u8],
    whiteouts: WhiteoutFormat,
    name: &str,
    created: &HashSet<PathBuf>,
) -> Result<(), LayerError> {
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let parent = root.join(parent_rel);
    let is_marker = rel.file_name() == Some(OsStr::new(OPAQUE_MARKER));
    let target = OsStr::from_bytes(target);
    if !is_marker && (target.is_empty() || target == ".." || target == "." || target.as_bytes().contains(&b'/')) {
        return Err(LayerError::unsafe_entry(name, "whiteout of an invalid name"));
    }
    if whiteouts == WhiteoutFormat::Remove {
        let doomed: Vec<PathBuf> = if is_marker {
            let children = std::fs::read_dir(&parent).map_err(|e| LayerError::io("read dir", &parent, e))?;
            children
                .flatten()
                .map(|e| parent_rel.join(e.file_name()))
                .filter(|c| !created.contains(c))
                .collect()
        } else {
            vec![parent_rel.join(target)]
        };
        for d in doomed {
            clear(&root.join(d), false)?;
        }
        return Ok(());
    }
    if whiteouts == WhiteoutFormat::Files {
        let path = root.join(rel);
        clear(&path, false)?;
        std::fs::File::create(&path).map_err(|e| LayerError::io("whiteout", &path, e))?;
        return Ok(());
    }
    if is_marker {
        return xattr::set(&parent, OVERLAY_OPAQUE_XATTR, b"y").map_err(|e| LayerError::io("mark opaque", &parent, e));
    }
    let path = parent.join(target);
    clear(&path, false)?;
    make_whiteout(&path).map_err(|e| LayerError::io("whiteout", &path, e))
}

fn apply_metadata<R: Read>(entry: &mut tar::Entry<R>, path: &Path, header: &tar::Header) -> Result<(), LayerError> {
    let is_symlink = header.entry_type() == EntryType::Symlink;
    let uid = header.uid().map_err(|e| LayerError::io("uid", path, e))? as u32;
    let gid = header.gid().map_err(|e| LayerError::io("gid", path, e))? as u32;
    // Ownership first: chown clears set-id bits the mode sets below.
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .or_else(|e| if e.raw_os_error() == Some(libc::EPERM) { Ok(()) } else { Err(e) })
        .map_err(|e| LayerError::io("chown", path, e))?;
    if let Some(exts) = entry.pax_extensions().map_err(|e| LayerError::io("pax headers", path, e))? {
        for ext in exts {
            let ext = ext.map_err(|e| LayerError::io("pax header", path, e))?;
            let Ok(key) = ext.key() else { continue };
            if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                xattr::set(path, attr, ext.value_bytes()).map_err(|e| LayerError::Io {
                    op: "set xattr",
                    path: path.join(attr),
                    error: e,
                })?;
            }
        }
    }
    if !is_symlink {
        let mode = header.mode().map_err(|e| LayerError::io("mode", path, e))? & 0o7777;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| LayerError::io("chmod", path, e))?;
    }
    Ok(())
}

/// Sets atime and mtime of `path` (not following a symlink).
pub fn set_times(path: &Path, secs: i64, nsecs: i64) -> io::Result<()> {
    let ts = nix::sys::time::TimeSpec::new(secs, nsecs);
    nix::sys::stat::utimensat(None, path, &ts, &ts, nix::sys::stat::UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}
