//! The content-addressed blob store: `<root>/sha256/<hex>`, each blob
//! written atomically and verified against its digest before it becomes
//! visible, shared by every image that names it.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} not found")]
    NotFound(Digest),
    #[error("blob content does not match its digest: expected {expected}, got {actual}")]
    Mismatch { expected: Digest, actual: Digest },
    #[error("{op} {path}: {error}")]
    Io { op: &'static str, path: PathBuf, error: io::Error },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BlobError {
    let path = path.to_path_buf();
    move |error| BlobError::Io { op, path, error }
}

/// A blob store rooted at a directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore, BlobError> {
        let root = root.into();
        for d in [root.join("sha256"), root.join("tmp")] {
            std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        Ok(BlobStore { root })
    }

    /// Where the blob `d` lives.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("sha256").join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Streams `content` into the store and returns its digest and size.
    /// With `expected`, content with another digest is refused and nothing
    /// is stored. The blob appears only complete (write, fsync, rename).
    pub fn put(&self, content: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64), BlobError> {
        let tmp = tempfile_in(&self.root.join("tmp"))?;
        let (file, tmp_path) = tmp;
        let mut w = HashingWriter::new(io::BufWriter::new(file));
        let mut content = content;
        let copied = io::copy(&mut content, &mut w).map_err(io_err("write blob", &tmp_path));
        let cleanup = |e| {
            let _ = std::fs::remove_file(&tmp_path);
            e
        };
        copied.map_err(cleanup)?;
        let (buf, digest, size) = w.finish();
        let file = buf.into_inner().map_err(|e| {
            cleanup(BlobError::Io {
                op: "flush blob",
                path: tmp_path.clone(),
                error: e.into_error(),
            })
        })?;
        if let Some(exp) = expected {
            if *exp != digest {
                return Err(cleanup(BlobError::Mismatch {
                    expected: exp.clone(),
                    actual: digest,
                }));
            }
        }
        file.sync_all().map_err(io_err("fsync blob", &tmp_path)).map_err(cleanup)?;
        let dest = self.path(&digest);
        std::fs::rename(&tmp_path, &dest)
            .map_err(io_err("store blob", &dest))
            .map_err(cleanup)?;
        let dir = self.root.join("sha256");
        File::open(&dir).and_then(|d| d.sync_all()).map_err(io_err("fsync", &dir))?;
        Ok((digest, size))
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, BlobError> {
        File::open(self.path(d)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                BlobError::NotFound(d.clone())
            } else {
                BlobError::Io {
                    op: "open blob",
                    path: self.path(d),
                    error: e,
                }
            }
        })
    }

    /// Re-hashes a stored blob and checks it still matches its name.
    pub fn verify(&self, d: &Digest) -> Result<(), BlobError> {
        let mut r = crate::digest::HashingReader::new(self.open_blob(d)?);
        io::copy(&mut r, &mut io::sink()).map_err(io_err("read blob", &self.path(d)))?;
        let (actual, _) = r.finish();
        if actual != *d {
            return Err(BlobError::Mismatch {
                expected: d.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Removes a blob; removing a missing one is fine.
    pub fn remove(&self, d: &Digest) -> Result<(), BlobError> {
        match std::fs::remove_file(self.path(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(BlobError::Io {
                op: "remove blob",
                path: self.path(d),
                error: e,
            }),
            _ => Ok(()),
        }
    }

    /// Every stored blob.
    pub fn list(&self) -> Result<Vec<Digest>, BlobError> {
        let dir = self.root.join("sha256");
        let mut out: Vec<Digest> = std::fs::read_dir(&dir)
            .map_err(io_err("list", &dir))?
            .filter_map(|e| e.ok()?.file_name().to_str().and_then(|n| format!("sha256:{n}").parse().ok()))
            .collect();
        out.sort();
        Ok(out)
    }
}

/// A new empty file in `dir` with a unique name.
fn tempfile_in(dir: &Path) -> Result<(File, PathBuf), BlobError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(BlobError::Io {
                    op: "create",
                    path,
                    error: e,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_verify_and_refuse_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (d, size) = store.put(&b"hello"[..], None).unwrap();
        assert_eq!((d.clone(), size), (Digest::of(b"hello"), 5));
        assert!(store.exists(&d));
        store.verify(&d).unwrap();
        let wrong = Digest::of(b"other");
        assert!(matches!(store.put(&b"hello!"[..], Some(&wrong)), Err(BlobError::Mismatch { .. })));
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "no temporary file left"
        );
        std::fs::write(store.path(&d), "tampered").unwrap();
        assert!(matches!(store.verify(&d), Err(BlobError::Mismatch { .. })));
        store.remove(&d).unwrap();
        store.remove(&d).unwrap();
        assert!(matches!(store.open_blob(&d), Err(BlobError::NotFound(_))));
    }
}
