//! The tarballs of `berth cp`: a local file or directory packed under
//! the name its copy must have ([`pack`]), and a container's tarball
//! unpacked with its root renamed ([`unpack`]), as moby's `Untar` does for
//! docker's CLI: no ownership taken over, permissions and times kept, an
//! existing directory never replaced by a non-directory (nor the other
//! way round), nothing written outside the destination.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::super::format::go_quote;
use super::super::CliError;
use super::paths::clean;

/// A local `path` as a tarball whose root entry is `root` (`.` for the
/// contents of a directory). Symlinks are packed as links.
pub fn pack(path: &str, root: &str) -> Result<Vec<u8>, CliError> {
    let failed = |e: std::io::Error| CliError::Failed(format!("packing {path}: {e}"));
    let meta = std::fs::symlink_metadata(path).map_err(failed)?;
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    if meta.is_dir() {
        b.append_dir_all(root, path).map_err(failed)?;
    } else {
        b.append_path_with_name(path, root).map_err(failed)?;
    }
    b.into_inner().map_err(failed)
}

/// How the names in an archive map to where its entries go.
pub struct Rename {
    /// The archive's root is `.`: every entry is inside it.
    pub contents: bool,
    /// The name the root takes (`.` to unpack its contents in place).
    pub root: String,
}

impl Rename {
    /// Where `name` goes, relative to the destination directory; `old`
    /// is the archive's root name. berthd's archive of `dir/.` names the
    /// entries inside without the `./` moby's has: both are taken.
    fn apply(&self, name: &str, old: &str) -> String {
        let name = name.trim_end_matches('/');
        let rest = if self.contents {
            Some(name.strip_prefix("./").unwrap_or(if name == "." { "" } else { name }))
        } else if name == old {
            Some("")
        } else {
            name.strip_prefix(old).and_then(|r| r.strip_prefix('/'))
        };
        match rest {
            None => name.to_string(),
            Some("") => self.root.clone(),
            Some(r) if self.root == "." => r.to_string(),
            Some(r) => format!("{}/{r}", self.root),
        }
    }
}

fn bad_entry(name: &str) -> CliError {
    CliError::Failed(format!("invalid archive entry {}: outside the destination", go_quote(name)))
}

/// Unpacks `archive` into the directory `dst`, renaming its root as
/// `rename` says.
pub fn unpack(archive: impl Read, dst: &Path, rename: &Rename) -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Failed(format!("unpacking into {}: {e}", dst.display()));
    let mut a = tar::Archive::new(archive);
    a.set_preserve_permissions(true);
    a.set_preserve_mtime(true);
    let mut root: Option<String> = None;
    let mut dirs: Vec<(PathBuf, u64)> = Vec::new();
    for entry in a.entries().map_err(failed)? {
        let mut entry = entry.map_err(failed)?;
        let name = entry.path().map_err(failed)?.to_string_lossy().into_owned();
        let old = root
            .get_or_insert_with(|| name.trim_start_matches("./").split('/').next().unwrap_or_default().to_string())
            .clone();
        let rel = clean(&rename.apply(&name, &old));
        if rel.starts_with('/') || rel == ".." || rel.starts_with("../") {
            return Err(bad_entry(&name));
        }
        let path = dst.join(&rel);
        let kind = entry.header().entry_type();
        let is_dir = kind.is_dir();
        if let Some(parent) = path.parent() {
            if !parent.exists() {
                std::fs::create_dir_all(parent).map_err(failed)?;
            }
        }
        if let Ok(m) = std::fs::symlink_metadata(&path) {
            if m.is_dir() && !is_dir {
                return Err(CliError::Failed(format!(
                    "cannot overwrite directory {} with non-directory {}",
                    go_quote(&path.to_string_lossy()),
                    go_quote(&dst.to_string_lossy())
                )));
            }
            if !m.is_dir() && is_dir {
                return Err(CliError::Failed(format!(
                    "cannot overwrite non-directory {} with directory {}",
                    go_quote(&path.to_string_lossy()),
                    go_quote(&dst.to_string_lossy())
                )));
            }
            if !m.is_dir() {
                std::fs::remove_file(&path).map_err(failed)?;
            }
        }
        if kind == tar::EntryType::Link {
            let target = entry
                .link_name()
                .map_err(failed)?
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let target = clean(&rename.apply(&target, &old));
            if target.starts_with('/') || target.starts_with("../") {
                return Err(bad_entry(&target));
            }
            std::fs::hard_link(dst.join(target), &path).map_err(failed)?;
            continue;
        }
        entry.unpack(&path).map_err(failed)?;
        if is_dir {
            dirs.push((path, entry.header().mtime().unwrap_or(0)));
        }
    }
    // Unpacking into a directory changed its time: set it last, as moby does.
    for (d, mtime) in dirs.iter().rev() {
        set_mtime(d, *mtime);
    }
    Ok(())
}

/// Sets a directory's modification (and access) time; best effort.
fn set_mtime(path: &Path, secs: u64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_renamed_as_dockers() {
        let to = |root: &str| Rename {
            contents: false,
            root: root.into(),
        };
        assert_eq!(to("copy").apply("d/", "d"), "copy");
        assert_eq!(to("copy").apply("d/sub/b", "d"), "copy/sub/b");
        assert_eq!(to("copy").apply("dd/x", "d"), "dd/x");
        assert_eq!(to("d").apply("d/a", "d"), "d/a");
        let inside = |root: &str| Rename {
            contents: true,
            root: root.into(),
        };
        // moby's `./a` and berthd's `a` alike.
        assert_eq!(inside("n").apply("./", "."), "n");
        assert_eq!(inside("n").apply("./a", "."), "n/a");
        assert_eq!(inside("n").apply("sub/b", "."), "n/sub/b");
        assert_eq!(inside(".").apply("sub/b", "."), "sub/b");
        assert_eq!(inside(".").apply(".", "."), ".");
    }

    #[test]
    fn pack_and_unpack_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/b"), "b").unwrap();
        std::os::unix::fs::symlink("sub/b", src.join("lnk")).unwrap();
        let tarball = pack(&src.to_string_lossy(), "copy").unwrap();
        let dst = t.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        let rename = Rename {
            contents: false,
            root: "renamed".into(),
        };
        unpack(tarball.as_slice(), &dst, &rename).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("renamed/sub/b")).unwrap(), "b");
        assert_eq!(std::fs::read_link(dst.join("renamed/lnk")).unwrap(), Path::new("sub/b"));
        // A file does not replace a directory.
        std::fs::write(t.path().join("f"), "f").unwrap();
        let file = pack(&t.path().join("f").to_string_lossy(), "renamed").unwrap();
        let e = unpack(file.as_slice(), &dst, &rename).unwrap_err();
        assert!(e.to_string().starts_with("cannot overwrite directory"), "{e}");
    }
}
