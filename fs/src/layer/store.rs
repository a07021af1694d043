//! The layer store: image layers by chain ID, each applied once, shared by
//! every image that stacks the same layers, reference-counted and removed
//! only when nothing refers to it.
//!
//! On disk: `<root>/<chain hex>/diff/` (the layer's files) and
//! `<root>/<chain hex>/layer.json` (written atomically, last: a directory
//! without it is an unfinished apply and is removed when the store opens).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::apply::apply_layer;
use super::whiteout::WhiteoutFormat;
use super::LayerError;
use crate::digest::Digest;

const META: &str = "layer.json";

/// One stored layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Uncompressed size of the layer tarball.
    pub size: u64,
    /// How many images (or other users) hold the layer.
    pub references: u64,
}

/// The chain ID of a layer with `diff_id` on top of `parent` (OCI
/// image-spec config.md: ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// The store. Calls are serialized by an internal lock.
pub struct LayerStore {
    root: PathBuf,
    whiteouts: WhiteoutFormat,
    lock: Mutex<()>,
}

impl LayerStore {
    /// Opens the store at `root`, removing what an interrupted apply left.
    pub fn open(root: impl Into<PathBuf>) -> Result<LayerStore, LayerError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| LayerError::io("create", &root, e))?;
        for entry in std::fs::read_dir(&root).map_err(|e| LayerError::io("read", &root, e))?.flatten() {
            let p = entry.path();
            if !p.join(META).is_file() {
                std::fs::remove_dir_all(&p).map_err(|e| LayerError::io("remove unfinished layer", &p, e))?;
            }
        }
        let whiteouts = WhiteoutFormat::detect(&root);
        Ok(LayerStore {
            root,
            whiteouts,
            lock: Mutex::new(()),
        })
    }

    fn dir(&self, chain: &Digest) -> PathBuf {
        self.root.join(chain.hex())
    }

    /// The directory holding the files of layer `chain`.
    pub fn diff_dir(&self, chain: &Digest) -> PathBuf {
        self.dir(chain).join("diff")
    }

    /// Applies `input` on top of `parent` unless an identical layer is
    /// already stored (then `input` is only read to learn its diffID, when
    /// `known_diff_id` is not given). Takes one reference.
    pub fn register(&self, parent: Option<&Digest>, input: impl Read, known_diff_id: Option<&Digest>) -> Result<Layer, LayerError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = parent {
            self.read_meta(p)?;
        }
        if let Some(d) = known_diff_id {
            let chain = chain_id(parent, d);
            if self.dir(&chain).join(META).is_file() {
                return self.change_refs(&chain, 1);
            }
        }
        let staging = self
            .root
            .join(format!(".apply-{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging).map_err(|e| LayerError::io("create", &staging, e))?;
        let applied = apply_layer(input, &staging.join("diff"), self.whiteouts);
        let applied = match applied {
            Ok(a) => a,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        let chain = chain_id(parent, &applied.diff_id);
        if self.dir(&chain).join(META).is_file() {
            let _ = std::fs::remove_dir_all(&staging);
            return self.change_refs(&chain, 1);
        }
        let layer = Layer {
            chain_id: chain.clone(),
            diff_id: applied.diff_id,
            parent: parent.cloned(),
            size: applied.size,
            references: 1,
        };
        write_meta(&staging, &layer)?;
        let dest = self.dir(&chain);
        std::fs::rename(&staging, &dest).map_err(|e| LayerError::io("store layer", &dest, e))?;
        Ok(layer)
    }

    /// A stored layer.
    pub fn get(&self, chain: &Digest) -> Result<Layer, LayerError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.read_meta(chain)
    }

    /// Every stored layer.
    pub fn list(&self) -> Result<Vec<Layer>, LayerError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.root)
            .map_err(|e| LayerError::io("read", &self.root, e))?
            .flatten()
        {
            if let Some(d) = e.file_name().to_str().and_then(|n| format!("sha256:{n}").parse::<Digest>().ok()) {
                out.push(self.read_meta(&d)?);
            }
        }
        out.sort_by(|a, b| a.chain_id.cmp(&b.chain_id));
        Ok(out)
    }

    /// Drops one reference to `chain`.
    pub fn release(&self, chain: &Digest) -> Result<Layer, LayerError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.change_refs(chain, -1)
    }

    /// Removes every layer nobody refers to and no other layer stacks on,
    /// repeating until none is left; returns what was removed.
    pub fn garbage_collect(&self) -> Result<Vec<Digest>, LayerError> {
        let all = self.list()?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut alive = all;
        let mut removed = Vec::new();
        loop {
            let victim = alive
                .iter()
                .position(|l| l.references == 0 && !alive.iter().any(|c| c.parent.as_ref() == Some(&l.chain_id)));
            let Some(i) = victim else { break };
            let l = alive.remove(i);
            let dir = self.dir(&l.chain_id);
            // Metadata first: a crash leaves an unfinished layer, cleaned at open.
            std::fs::remove_file(dir.join(META)).map_err(|e| LayerError::io("remove", &dir, e))?;
            std::fs::remove_dir_all(&dir).map_err(|e| LayerError::io("remove", &dir, e))?;
            removed.push(l.chain_id);
        }
        Ok(removed)
    }

    fn change_refs(&self, chain: &Digest, delta: i64) -> Result<Layer, LayerError> {
        let mut l = self.read_meta(chain)?;
        l.references = l
            .references
            .checked_add_signed(delta)
            .ok_or_else(|| LayerError::unsafe_entry(&chain.to_string(), "released more often than registered"))?;
        write_meta(&self.dir(chain), &l)?;
        Ok(l)
    }

    fn read_meta(&self, chain: &Digest) -> Result<Layer, LayerError> {
        let path = self.dir(chain).join(META);
        let text = std::fs::read_to_string(&path).map_err(|e| LayerError::io("read layer", &path, e))?;
        parse_meta(&text).ok_or_else(|| LayerError::io("parse layer", &path, std::io::Error::from(std::io::ErrorKind::InvalidData)))
    }
}

fn parse_meta(text: &str) -> Option<Layer> {
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).map(str::to_string);
    Some(Layer {
        chain_id: field("chain_id")?.parse().ok()?,
        diff_id: field("diff_id")?.parse().ok()?,
        parent: match field("parent")?.as_str() {
            "" => None,
            p => Some(p.parse().ok()?),
        },
        size: field("size")?.parse().ok()?,
        references: field("references")?.parse().ok()?,
    })
}

/// Writes layer.json atomically (write, fsync, rename).
fn write_meta(dir: &Path, l: &Layer) -> Result<(), LayerError> {
    let text = format!(
        "chain_id={}\ndiff_id={}\nparent={}\nsize={}\nreferences={}\n",
        l.chain_id,
        l.diff_id,
        l.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        l.size,
        l.references
    );
    let tmp = dir.join(".layer.json.tmp");
    let path = dir.join(META);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| LayerError::io("write", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, content).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn chain_ids_refcounts_and_gc() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayerStore::open(dir.path()).unwrap();
        let base = layer_tar("a", b"1");
        let top = layer_tar("b", b"2");
        let l1 = store.register(None, &base[..], None).unwrap();
        assert_eq!(l1.chain_id, l1.diff_id);
        let l2 = store.register(Some(&l1.chain_id), &top[..], None).unwrap();
        assert_eq!(l2.chain_id, chain_id(Some(&l1.chain_id), &Digest::of(&top)));
        assert!(store.diff_dir(&l2.chain_id).join("b").is_file());
        // A second image with the same base shares it.
        let again = store.register(None, &base[..], Some(&l1.diff_id)).unwrap();
        assert_eq!((again.chain_id.clone(), again.references), (l1.chain_id.clone(), 2));
        store.release(&l1.chain_id).unwrap();
        store.release(&l1.chain_id).unwrap();
        assert!(store.release(&l1.chain_id).is_err(), "cannot go below zero");
        assert!(store.garbage_collect().unwrap().is_empty(), "l2 still stacks on l1");
        store.release(&l2.chain_id).unwrap();
        let removed = store.garbage_collect().unwrap();
        assert_eq!(removed, vec![l2.chain_id.clone(), l1.chain_id.clone()]);
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn unfinished_layers_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("deadbeef/diff")).unwrap();
        std::fs::create_dir_all(dir.path().join(".apply-1-2/diff")).unwrap();
        let store = LayerStore::open(dir.path()).unwrap();
        assert!(store.list().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let bad = store.register(None, &b"not a tar at all, definitely not"[..], None);
        assert!(bad.is_err());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a failed register leaves nothing"
        );
    }
}
