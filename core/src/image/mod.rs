//! Images: the store of image configurations, their layers in the graph
//! driver, and the names that point at them.
//!
//! Layout under `<data root>/image`: `blobs/` holds configurations and
//! layer tarballs by digest (so that `save` can give back what `load`
//! took); `images/<id>.json` one record per image; `repositories.json`
//! the `name:tag -> id` map. Every file is written atomically; layers
//! live in the graph driver under their chain IDs.

pub mod archive;
pub mod changes;
pub mod oci;
pub mod reference;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_fs::blob::BlobStore;
use berth_fs::digest::Digest;
use berth_plugin::GraphDriver;
use serde::{Deserialize, Serialize};

/// What went wrong with an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Storage(String),
}

impl ImageError {
    fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> ImageError {
        ImageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, ImageError>;

/// One image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<hex>` of the configuration.
    pub id: String,
    /// The uncompressed layers' digests, bottom first.
    pub diff_ids: Vec<String>,
    /// The layers' chain IDs (their names in the graph driver).
    pub chain_ids: Vec<String>,
    /// Sum of the layers' uncompressed sizes.
    pub size: u64,
    /// When it was loaded (seconds since the epoch).
    pub loaded: i64,
}

/// The image store.
pub struct ImageStore {
    root: PathBuf,
    blobs: BlobStore,
    graph: Arc<dyn GraphDriver>,
    pub graph_name: String,
    /// Serializes changes to records, names and layers.
    lock: Mutex<()>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl ImageStore {
    pub fn open(data_root: &std::path::Path, graph: Arc<dyn GraphDriver>, graph_name: &str) -> Result<ImageStore> {
        // Image records name layers of one graph driver: another driver's
        // images are kept apart, as Docker keeps image/<driver>.
        let root = if graph_name == berth_fs::graph::DEFAULT_GRAPH_DRIVER {
            data_root.join("image")
        } else {
            data_root.join(format!("image-{graph_name}"))
        };
        for d in [root.join("images"), root.join("tmp"), root.join("layers")] {
            std::fs::create_dir_all(&d).map_err(|e| ImageError::io("create", &d, e))?;
        }
        let blobs = BlobStore::open(root.join("blobs")).map_err(|e| ImageError::Storage(e.to_string()))?;
        Ok(ImageStore {
            root,
            blobs,
            graph,
            graph_name: graph_name.to_string(),
            lock: Mutex::new(()),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `name` (a chain ID's hex) is a layer of some image, applied
    /// whole.
    pub fn has_layer(&self, name: &str) -> bool {
        self.root.join("layers").join(name).exists()
    }

    /// The graph driver holding the layers (and containers' layers on them).
    pub fn graph(&self) -> &Arc<dyn GraphDriver> {
        &self.graph
    }

    /// A scratch file (unlinked already) for a body too big to hold.
    pub fn scratch_file(&self) -> Result<std::fs::File> {
        tempfile::tempfile_in(self.root.join("tmp")).map_err(|e| ImageError::io("create scratch", self.root.join("tmp"), e))
    }

    /// A scratch directory for an operation, removed by the caller.
    pub fn scratch(&self) -> Result<tempfile::TempDir> {
        tempfile::tempdir_in(self.root.join("tmp")).map_err(|e| ImageError::io("create scratch", self.root.join("tmp"), e))
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.trim_start_matches("sha256:")))
    }

    pub fn images(&self) -> Vec<Image> {
        let mut out: Vec<Image> = std::fs::read_dir(self.root.join("images"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        out.sort_by(|a: &Image, b: &Image| b.loaded.cmp(&a.loaded).then(a.id.cmp(&b.id)));
        out
    }

    pub fn repositories(&self) -> BTreeMap<String, String> {
        std::fs::read(self.root.join("repositories.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_repositories(&self, repos: &BTreeMap<String, String>) -> Result<()> {
        let path = self.root.join("repositories.json");
        let json = serde_json::to_vec_pretty(repos).map_err(|e| ImageError::Storage(e.to_string()))?;
        berth_fs::atomic::write(&path, &json).map_err(|e| ImageError::io("write", &path, e))
    }

    /// The names pointing at image `id`.
    pub fn tags_of(&self, id: &str) -> Vec<String> {
        self.repositories().into_iter().filter(|(_, v)| v == id).map(|(k, _)| k).collect()
    }

    /// The image a reference names: `name[:tag]`, a full ID, or an ID
    /// prefix of at least 4 hex digits that is not ambiguous.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let full = reference.trim_start_matches("sha256:");
        if full.len() == 64 && full.chars().all(|c| c.is_ascii_hexdigit()) {
            if let Ok(image) = self.get(&format!("sha256:{full}")) {
                return Ok(image);
            }
        }
        if let Some(name) = reference::normalize(reference) {
            if let Some(id) = self.repositories().get(&name) {
                return self.get(id);
            }
        }
        let hex = reference.trim_start_matches("sha256:");
        if hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let matches: Vec<Image> = self
                .images()
                .into_iter()
                .filter(|i| i.id.trim_start_matches("sha256:").starts_with(hex))
                .collect();
            match matches.len() {
                1 => return Ok(matches.into_iter().next().expect("one match")),
                0 => {}
                _ => return Err(ImageError::Conflict(format!("{reference}: more than one image has this ID prefix"))),
            }
        }
        Err(ImageError::NotFound(reference.to_string()))
    }

    fn get(&self, id: &str) -> Result<Image> {
        let path = self.record_path(id);
        let bytes = std::fs::read(&path).map_err(|_| ImageError::NotFound(id.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Storage(format!("{}: {e}", path.display())))
    }

    /// The image's configuration (OCI image config JSON).
    pub fn config(&self, image: &Image) -> Result<serde_json::Value> {
        let d: Digest = image.id.parse().map_err(|e| ImageError::Storage(format!("{e:?}")))?;
        let path = self.blobs.path(&d);
        let bytes = std::fs::read(&path).map_err(|e| ImageError::io("read image config", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Storage(format!("{}: {e}", path.display())))
    }

    /// Stores an image from its configuration and its layers' uncompressed
    /// tarballs (paths, bottom first), then points `tags` at it.
    pub fn add(&self, config: &[u8], layers: &[PathBuf], tags: &[String]) -> Result<Image> {
        let cfg: serde_json::Value =
            serde_json::from_slice(config).map_err(|e| ImageError::Invalid(format!("image configuration: {e}")))?;
        let diff_ids: Vec<String> = cfg["rootfs"]["diff_ids"]
            .as_array()
            .ok_or_else(|| ImageError::Invalid("image configuration has no rootfs.diff_ids".into()))?
            .iter()
            .map(|d| d.as_str().unwrap_or_default().to_string())
            .collect();
        if diff_ids.len() != layers.len() {
            return Err(ImageError::Invalid(format!(
                "the configuration lists {} layers, the archive has {}",
                diff_ids.len(),
                layers.len()
            )));
        }
        for t in tags {
            if reference::normalize(t).is_none() {
                return Err(ImageError::Invalid(format!("invalid reference format: {t}")));
            }
        }
        let _held = self.held();
        let (id, _) = self.blobs.put(config, None).map_err(|e| ImageError::Storage(e.to_string()))?;
        let mut parent: Option<Digest> = None;
        let mut chain_ids = Vec::new();
        let mut size = 0;
        for (i, (diff_id, path)) in diff_ids.iter().zip(layers).enumerate() {
            let diff: Digest = diff_id
                .parse()
                .map_err(|_| ImageError::Invalid(format!("layer {i}: bad diff_id {diff_id:?}")))?;
            let chain = berth_fs::layer::store::chain_id(parent.as_ref(), &diff);
            let name = chain.hex().to_string();
            // A layer counts once applied and kept whole: a crash before
            // that leaves one without its mark, made again here.
            let mark = self.root.join("layers").join(&name);
            if self.graph.exists(&name) && !mark.exists() {
                let _ = self.graph.remove(&name);
            }
            if !self.graph.exists(&name) {
                let req = berth_plugin::graph::CreateRequest {
                    id: name.clone(),
                    parent: parent.as_ref().map(|p| p.hex().to_string()).unwrap_or_default(),
                    mount_label: String::new(),
                };
                self.graph
                    .create(&req)
                    .map_err(|e| ImageError::Storage(format!("layer {i}: {e}")))?;
                let mut f = std::fs::File::open(path).map_err(|e| ImageError::io("open layer", path, e))?;
                let applied = self.graph.apply_diff(&name, &mut f);
                let ok = matches!(&applied, Ok(a) if a.diff_id == *diff_id);
                if !ok {
                    let _ = self.graph.remove(&name);
                    return Err(match applied {
                        Err(e) => ImageError::Invalid(format!("layer {i}: {e}")),
                        Ok(a) => ImageError::Invalid(format!(
                            "layer {i}: its content is {} but the configuration says {diff_id}",
                            a.diff_id
                        )),
                    });
                }
                // Kept for save: the same bytes give the same diffID.
                let f = std::fs::File::open(path).map_err(|e| ImageError::io("open layer", path, e))?;
                if let Err(e) = self.blobs.put(f, Some(&diff)) {
                    let _ = self.graph.remove(&name);
                    return Err(ImageError::Storage(format!("layer {i}: {e}")));
                }
                berth_fs::atomic::write(&mark, b"").map_err(|e| ImageError::io("mark layer", &mark, e))?;
            }
            size += std::fs::metadata(self.blobs.path(&diff)).map(|m| m.len()).unwrap_or(0);
            chain_ids.push(chain.to_string());
            parent = Some(chain);
        }
        let image = Image {
            id: id.to_string(),
            diff_ids,
            chain_ids,
            size,
            loaded: now(),
        };
        let json = serde_json::to_vec(&image).map_err(|e| ImageError::Storage(e.to_string()))?;
        let path = self.record_path(&image.id);
        berth_fs::atomic::write(&path, &json).map_err(|e| ImageError::io("write", &path, e))?;
        let mut repos = self.repositories();
        for t in tags {
            repos.insert(reference::normalize(t).expect("checked above"), image.id.clone());
        }
        self.save_repositories(&repos)?;
        Ok(image)
    }

    /// Points `target` (`name[:tag]`) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let name = reference::normalize(target).ok_or_else(|| ImageError::Invalid(format!("invalid reference format: {target}")))?;
        // Resolved under the lock: a concurrent rmi cannot leave the new
        // name pointing at a removed image.
        let _held = self.held();
        let image = self.resolve(source)?;
        let mut repos = self.repositories();
        repos.insert(name, image.id);
        self.save_repositories(&repos)
    }

    /// `docker rmi`: a name is untagged; the image goes with its last
    /// name (or when named by ID, if no other name points at it, or with
    /// `force`). Returns Docker's list of `Untagged`/`Deleted` entries.
    pub fn remove(&self, reference: &str, force: bool) -> Result<Vec<(&'static str, String)>> {
        let _held = self.held();
        let image = self.resolve(reference)?;
        let mut repos = self.repositories();
        let tags: Vec<String> = repos.iter().filter(|(_, v)| **v == image.id).map(|(k, _)| k.clone()).collect();
        let mut out = Vec::new();
        let by_name = reference::normalize(reference).filter(|n| repos.get(n) == Some(&image.id));
        if let Some(name) = by_name {
            repos.remove(&name);
            out.push(("Untagged", name));
            if tags.len() > 1 {
                self.save_repositories(&repos)?;
                return Ok(out);
            }
        } else if !force
            && tags
                .iter()
                .map(|t| t.rsplit_once(':').map(|(r, _)| r).unwrap_or(t))
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1
        {
            return Err(ImageError::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                &image.id.trim_start_matches("sha256:")[..12]
            )));
        } else {
            for t in &tags {
                repos.remove(t);
                out.push(("Untagged", t.clone()));
            }
        }
        self.save_repositories(&repos)?;
        let path = self.record_path(&image.id);
        std::fs::remove_file(&path).map_err(|e| ImageError::io("remove", &path, e))?;
        out.push(("Deleted", image.id.clone()));
        // Layers no other image uses go, top first.
        let used: std::collections::HashSet<String> = self.images().into_iter().flat_map(|i| i.chain_ids).collect();
        for (chain, diff) in image.chain_ids.iter().zip(&image.diff_ids).rev() {
            if used.contains(chain) {
                continue;
            }
            let name = chain.trim_start_matches("sha256:");
            let _ = std::fs::remove_file(self.root.join("layers").join(name));
            let _ = self.graph.remove(name);
            let still_used = self.images().iter().any(|i| i.diff_ids.contains(diff));
            if !still_used {
                if let Ok(d) = diff.parse::<Digest>() {
                    let _ = self.blobs.remove(&d);
                }
            }
        }
        if let Ok(d) = image.id.parse::<Digest>() {
            let _ = self.blobs.remove(&d);
        }
        Ok(out)
    }

    /// `docker image prune`: removes every image without a name (and,
    /// with `all`, every image; no container holds one yet). Returns the
    /// removed IDs and the bytes their layers' tarballs took.
    pub fn prune(&self, all: bool) -> Result<(Vec<String>, u64)> {
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        for image in self.images() {
            let named = !self.tags_of(&image.id).is_empty();
            if named && !all {
                continue;
            }
            let size = image.size;
            if self.remove(&image.id, true).is_ok() {
                reclaimed += size;
                deleted.push(image.id);
            }
        }
        Ok((deleted, reclaimed))
    }

    /// Where the image's configuration is kept.
    pub fn config_blob(&self, image: &Image) -> Result<PathBuf> {
        let d: Digest = image.id.parse().map_err(|e| ImageError::Storage(format!("{e:?}")))?;
        Ok(self.blobs.path(&d))
    }

    /// Where a layer's tarball is kept.
    pub fn layer_blob(&self, diff_id: &str) -> Option<PathBuf> {
        let d: Digest = diff_id.parse().ok()?;
        Some(self.blobs.path(&d))
    }
}
