//! Looking names up through the layers, top first, as overlayfs does:
//! the topmost layer that has a name wins; a whiteout hides the name in
//! every layer below; an opaque directory hides the directories below it.
//! Both whiteout forms are read (0:0 character devices with the opaque
//! xattr, and `.wh.` files with `.wh..wh..opq`).
//!
//! Lookups go one name at a time from a directory whose merged layers are
//! already known, so a lookup costs one or two stats per layer, never a
//! walk from the root.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::layer::whiteout::{is_opaque, is_whiteout, OPAQUE_MARKER, WHITEOUT_PREFIX};

/// The layers of a union, topmost first.
#[derive(Debug)]
pub struct Layers {
    dirs: Vec<PathBuf>,
    /// Each layer's root held open, and named through /proc/self/fd: a
    /// short name for paths that would pass PATH_MAX under the layer's own
    /// (a union's paths may be as long as PATH_MAX under its mount point).
    _roots: Vec<std::fs::File>,
    short: Vec<PathBuf>,
}

/// Where a name is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    /// The topmost layer holding it.
    pub layer: usize,
    /// For a directory, the layers its listing merges, top first (never
    /// empty); empty for everything else.
    pub dirs: Vec<usize>,
}

impl At {
    pub fn is_dir(&self) -> bool {
        !self.dirs.is_empty()
    }
}

/// The outcome of looking a name up.
#[derive(Debug)]
pub enum Lookup {
    Found(At, std::fs::Metadata),
    /// A whiteout in this layer hides the name.
    Hidden(usize),
    Missing,
}

/// One entry of a merged directory listing.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: OsString,
    pub layer: usize,
    pub kind: std::fs::FileType,
}

fn wh_name(name: &OsStr) -> OsString {
    let mut s = OsString::from(WHITEOUT_PREFIX);
    s.push(name);
    s
}

/// Whether a name is one of the whiteout forms, never shown to users.
pub fn is_whiteout_name(name: &OsStr) -> bool {
    name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes())
}

fn opaque_in(dir: &Path) -> bool {
    is_opaque(dir) || dir.join(OPAQUE_MARKER).symlink_metadata().is_ok()
}

fn missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

impl Layers {
    pub fn new(dirs: Vec<PathBuf>) -> io::Result<Layers> {
        let mut roots = Vec::new();
        let mut short = Vec::new();
        for d in &dirs {
            let mut o = std::fs::OpenOptions::new();
            o.read(true);
            std::os::unix::fs::OpenOptionsExt::custom_flags(&mut o, libc::O_PATH | libc::O_DIRECTORY);
            let f = o.open(d).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", d.display())))?;
            short.push(PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f))));
            roots.push(f);
        }
        Ok(Layers {
            dirs,
            _roots: roots,
            short,
        })
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The path of `rel` in `layer`, with room left for one more name.
    pub fn path(&self, layer: usize, rel: &Path) -> PathBuf {
        let root = &self.dirs[layer];
        if rel.as_os_str().is_empty() {
            root.clone()
        } else if root.as_os_str().len() + rel.as_os_str().len() + 257 < libc::PATH_MAX as usize {
            root.join(rel)
        } else {
            self.short[layer].join(rel)
        }
    }

    /// The root directory: every layer down to the first opaque root.
    pub fn root(&self) -> io::Result<(At, std::fs::Metadata)> {
        let meta = self.dirs[0].symlink_metadata()?;
        let mut dirs = Vec::new();
        for (layer, dir) in self.dirs.iter().enumerate() {
            dirs.push(layer);
            if opaque_in(dir) {
                break;
            }
        }
        Ok((At { layer: 0, dirs }, meta))
    }

    /// Looks `name` up in directory `parent`, whose listing merges
    /// `parent_layers` (top first).
    pub fn lookup(&self, parent: &Path, parent_layers: &[usize], name: &OsStr) -> io::Result<Lookup> {
        if is_whiteout_name(name) {
            return Ok(Lookup::Missing);
        }
        let mut found: Option<(At, std::fs::Metadata)> = None;
        for &layer in parent_layers {
            let dir = self.path(layer, parent);
            let path = dir.join(name);
            match path.symlink_metadata() {
                Ok(m) if is_whiteout(&m) => {
                    return Ok(match found {
                        Some((at, meta)) => Lookup::Found(at, meta),
                        None => Lookup::Hidden(layer),
                    })
                }
                Ok(m) => {
                    let is_dir = m.is_dir();
                    // A directory ends the merge where it is opaque or where
                    // its own layer deletes the name below it.
                    let last = !is_dir || opaque_in(&path) || dir.join(wh_name(name)).symlink_metadata().is_ok();
                    match &mut found {
                        None => {
                            let dirs = if is_dir { vec![layer] } else { Vec::new() };
                            found = Some((At { layer, dirs }, m));
                            if last {
                                break;
                            }
                        }
                        Some((at, _)) => {
                            // A lower non-directory under a directory is hidden.
                            if !is_dir {
                                break;
                            }
                            at.dirs.push(layer);
                            if last {
                                break;
                            }
                        }
                    }
                }
                Err(e) if missing(&e) => {
                    if dir.join(wh_name(name)).symlink_metadata().is_ok() {
                        if found.is_none() {
                            return Ok(Lookup::Hidden(layer));
                        }
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(match found {
            Some((at, meta)) => Lookup::Found(at, meta),
            None => Lookup::Missing,
        })
    }

    /// The merged entries of directory `rel`, whose listing merges
    /// `layers` (top first): whiteouts applied and hidden, each name from
    /// its topmost layer.
    pub fn list(&self, rel: &Path, layers: &[usize]) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        let mut hidden: HashSet<OsString> = HashSet::new();
        for (i, &layer) in layers.iter().enumerate() {
            let dir = self.path(layer, rel);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if missing(&e) => continue,
                Err(e) => return Err(e),
            };
            let more_below = i + 1 < layers.len();
            let mut whited = Vec::new();
            let start = out.len();
            for e in entries {
                let e = e?;
                let name = e.file_name();
                if let Some(target) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
                    if name != OPAQUE_MARKER {
                        whited.push(OsStr::from_bytes(target).to_os_string());
                    }
                    continue;
                }
                let kind = e.file_type()?;
                if kind.is_char_device() && is_whiteout(&e.metadata()?) {
                    whited.push(name);
                    continue;
                }
                if i == 0 || !hidden.contains(&name) {
                    out.push(Listed { name, layer, kind });
                }
            }
            if more_below {
                hidden.extend(whited);
                hidden.extend(out[start..].iter().map(|l| l.name.clone()));
            }
        }
        Ok(out)
    }
}
