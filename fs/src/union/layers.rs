//! Looking names up through the layers, top first, as overlayfs does:
//! the topmost layer that has a name wins; a whiteout hides the name in
//! every layer below; an opaque directory hides the directories below it.
//! Both whiteout forms are read (0:0 character devices with the opaque
//! xattr, and `.wh.` files with `.wh..wh..opq`).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::layer::whiteout::{is_opaque, is_whiteout, OPAQUE_MARKER, WHITEOUT_PREFIX};

/// The layers of a union, topmost first.
#[derive(Debug, Clone)]
pub struct Layers {
    dirs: Vec<PathBuf>,
}

/// Where a name resolved: the layer and its metadata there.
#[derive(Debug, Clone)]
pub struct Found {
    pub layer: usize,
    pub path: PathBuf,
    pub meta: std::fs::Metadata,
    /// For a directory: one past the lowest layer its merged listing
    /// draws from.
    pub merge_end: usize,
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
    is_opaque(dir) || dir.join(OPAQUE_MARKER).exists()
}

impl Layers {
    pub fn new(dirs: Vec<PathBuf>) -> Layers {
        Layers { dirs }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Resolves `rel` (relative to the union root; "" is the root).
    pub fn find(&self, rel: &Path) -> io::Result<Option<Found>> {
        if rel.iter().any(is_whiteout_name) {
            return Ok(None);
        }
        // The layers a lookup may still descend into, shrinking as opaque
        // directories and non-directories are met on the way down.
        let mut depth_limit = self.dirs.len();
        let mut prefix = PathBuf::new();
        let comps: Vec<&OsStr> = rel.iter().collect();
        for (i, comp) in comps.iter().enumerate() {
            let parent = prefix.clone();
            prefix.push(comp);
            let last = i + 1 == comps.len();
            let mut found: Option<Found> = None;
            for layer in 0..depth_limit {
                let dir = &self.dirs[layer];
                if dir.join(&parent).join(wh_name(comp)).symlink_metadata().is_ok() {
                    depth_limit = layer;
                    break;
                }
                match dir.join(&prefix).symlink_metadata() {
                    Ok(m) if is_whiteout(&m) => {
                        depth_limit = layer;
                        break;
                    }
                    Ok(m) => {
                        if found.is_none() {
                            found = Some(Found {
                                layer,
                                path: dir.join(&prefix),
                                meta: m.clone(),
                                merge_end: layer + 1,
                            });
                            if !m.is_dir() || opaque_in(&dir.join(&prefix)) {
                                depth_limit = layer + 1;
                                break;
                            }
                        } else if !m.is_dir() {
                            // A lower non-directory under an upper directory is hidden.
                            depth_limit = layer;
                            break;
                        } else if opaque_in(&dir.join(&prefix)) {
                            depth_limit = layer + 1;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {}
                    Err(e) => return Err(e),
                }
            }
            let Some(mut f) = found else { return Ok(None) };
            if f.meta.is_dir() {
                // Deeper lookups only see layers down to where this directory ends.
                depth_limit = depth_limit.min(self.lowest_dir_layer(&prefix, f.layer, depth_limit));
                f.merge_end = depth_limit;
            }
            if last {
                return Ok(Some(f));
            }
            if !f.meta.is_dir() {
                return Ok(None);
            }
        }
        let m = self.dirs[0].symlink_metadata()?;
        let merge_end = self.lowest_dir_layer(Path::new(""), 0, self.dirs.len());
        Ok(Some(Found {
            layer: 0,
            path: self.dirs[0].clone(),
            meta: m,
            merge_end,
        }))
    }

    /// One past the lowest layer (from `from`, below `limit`) in which
    /// `rel` is still a merged directory.
    fn lowest_dir_layer(&self, rel: &Path, from: usize, limit: usize) -> usize {
        let mut end = from + 1;
        for layer in from..limit {
            match self.dirs[layer].join(rel).symlink_metadata() {
                Ok(m) if m.is_dir() => {
                    end = layer + 1;
                    if opaque_in(&self.dirs[layer].join(rel)) {
                        break;
                    }
                }
                Ok(_) => break,
                Err(_) => {
                    // Missing here: lower layers may still hold it unless
                    // a whiteout says otherwise, which `find` checked.
                }
            }
        }
        end
    }

    /// The merged entries of directory `rel`: name -> the layer it comes
    /// from, whiteouts applied and hidden.
    pub fn list(&self, rel: &Path) -> io::Result<BTreeMap<OsString, usize>> {
        let mut out = BTreeMap::new();
        let mut hidden: std::collections::HashSet<OsString> = std::collections::HashSet::new();
        let Some(top) = self.find(rel)? else { return Ok(out) };
        for layer in top.layer..top.merge_end {
            let dir = self.dirs[layer].join(rel);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => continue,
                Err(e) => return Err(e),
            };
            let mut whited = Vec::new();
            for e in entries {
                let e = e?;
                let name = e.file_name();
                if let Some(target) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
                    if name != OPAQUE_MARKER {
                        whited.push(OsStr::from_bytes(target).to_os_string());
                    }
                    continue;
                }
                let meta = e.path().symlink_metadata()?;
                if is_whiteout(&meta) {
                    whited.push(name);
                    continue;
                }
                if !hidden.contains(&name) {
                    out.entry(name).or_insert(layer);
                }
            }
            hidden.extend(whited);
            for name in out.keys() {
                hidden.insert(name.clone());
            }
            if opaque_in(&dir) {
                break;
            }
        }
        Ok(out)
    }
}
