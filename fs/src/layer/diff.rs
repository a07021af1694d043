//! Producing an OCI layer tarball from an upper directory.
//!
//! Whiteouts go back to their tarball form (`.wh.NAME`, `.wh..wh..opq`),
//! whichever form they have on disk. The output is reproducible: entries
//! in byte order of their names, numeric owners only, no user or group
//! names, xattrs sorted, overlayfs' own xattrs left out.

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::whiteout::{is_opaque, is_whiteout, OPAQUE_MARKER, OVERLAY_XATTR_PREFIX, WHITEOUT_PREFIX};
use super::LayerError;
use crate::digest::{Digest, HashingWriter};

/// Writes the layer tarball of `upper` to `out`; returns its diffID and size.
pub fn diff_layer(upper: &Path, out: impl Write) -> Result<(Digest, u64), LayerError> {
    let mut builder = tar::Builder::new(HashingWriter::new(out));
    builder.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(upper, Path::new(""), &mut builder, &mut links)?;
    let w = builder.into_inner().map_err(|e| LayerError::io("finish tar", upper, e))?;
    let (mut w, digest, size) = w.finish();
    w.flush().map_err(|e| LayerError::io("flush", upper, e))?;
    Ok((digest, size))
}

fn sorted_children(dir: &Path) -> Result<Vec<std::ffi::OsString>, LayerError> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| LayerError::io("read dir", dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| LayerError::io("read dir", dir, e))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

fn walk<W: Write>(root: &Path, rel: &Path, b: &mut tar::Builder<W>, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<(), LayerError> {
    let dir = root.join(rel);
    for name in sorted_children(&dir)? {
        let path = dir.join(&name);
        let entry_rel = rel.join(&name);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| LayerError::io("stat", &path, e))?;
        if is_whiteout(&meta) {
            let mut wh_name = std::ffi::OsString::from(WHITEOUT_PREFIX);
            wh_name.push(&name);
            append_empty(b, &rel.join(wh_name), &meta)?;
            continue;
        }
        if meta.is_dir() {
            append(b, &entry_rel, &path, &meta, EntryType::Directory, None)?;
            if is_opaque(&path) {
                append_empty(b, &entry_rel.join(OPAQUE_MARKER), &meta)?;
            }
            walk(root, &entry_rel, b, links)?;
            continue;
        }
        if meta.is_file() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                append(b, &entry_rel, &path, &meta, EntryType::Link, Some(first.clone()))?;
                continue;
            }
            links.insert(key, entry_rel.clone());
        }
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            EntryType::Symlink
        } else if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else if ft.is_fifo() {
            EntryType::Fifo
        } else if ft.is_file() {
            EntryType::Regular
        } else {
            // Sockets have no place in a layer.
            continue;
        };
        append(b, &entry_rel, &path, &meta, kind, None)?;
    }
    Ok(())
}

/// A header with the metadata every entry shares.
fn header_for(meta: &std::fs::Metadata, kind: EntryType) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(meta.uid() as u64);
    h.set_gid(meta.gid() as u64);
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn append_empty<W: Write>(b: &mut tar::Builder<W>, rel: &Path, meta: &std::fs::Metadata) -> Result<(), LayerError> {
    let mut h = header_for(meta, EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, rel, io::empty())
        .map_err(|e| LayerError::io("write tar", rel, e))
}

fn append<W: Write>(
    b: &mut tar::Builder<W>,
    rel: &Path,
    path: &Path,
    meta: &std::fs::Metadata,
    kind: EntryType,
    link: Option<PathBuf>,
) -> Result<(), LayerError> {
    let xattrs = xattrs_of(path)?;
    if !xattrs.is_empty() {
        let pax: Vec<(String, Vec<u8>)> = xattrs.into_iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), v)).collect();
        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(|e| LayerError::io("write tar", path, e))?;
    }
    let mut h = header_for(meta, kind);
    match kind {
        EntryType::Regular => {
            h.set_size(meta.len());
            let f = std::fs::File::open(path).map_err(|e| LayerError::io("open", path, e))?;
            return b.append_data(&mut h, rel, f).map_err(|e| LayerError::io("write tar", path, e));
        }
        EntryType::Symlink => {
            let target = std::fs::read_link(path).map_err(|e| LayerError::io("readlink", path, e))?;
            return b
                .append_link(&mut h, rel, &target)
                .map_err(|e| LayerError::io("write tar", path, e));
        }
        EntryType::Link => {
            let target = link.unwrap_or_default();
            return b
                .append_link(&mut h, rel, &target)
                .map_err(|e| LayerError::io("write tar", path, e));
        }
        EntryType::Char | EntryType::Block => {
            let rdev = meta.rdev();
            h.set_device_major(libc::major(rdev))
                .map_err(|e| LayerError::io("device", path, e))?;
            h.set_device_minor(libc::minor(rdev))
                .map_err(|e| LayerError::io("device", path, e))?;
        }
        _ => {}
    }
    b.append_data(&mut h, rel, io::empty())
        .map_err(|e| LayerError::io("write tar", path, e))
}

/// The xattrs of `path` worth carrying in a layer, sorted by name.
fn xattrs_of(path: &Path) -> Result<Vec<(String, Vec<u8>)>, LayerError> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        // Filesystems without xattrs simply have none.
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(LayerError::io("list xattrs", path, e)),
    };
    let mut out = Vec::new();
    for n in names {
        let Some(name) = n.to_str() else { continue };
        if name.starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        if let Some(v) = xattr::get(path, name).map_err(|e| LayerError::io("read xattr", path, e))? {
            out.push((name.to_string(), v));
        }
    }
    out.sort();
    Ok(out)
}
