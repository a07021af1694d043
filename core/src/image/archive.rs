//! `docker load` and `docker save`: archives of images.
//!
//! `save` writes one tarball that is both a docker-archive
//! (`manifest.json` listing each image's configuration, names and layer
//! tarballs, plus the legacy `repositories`) and an OCI image layout
//! ([`super::oci`]), as Docker 25 does: the docker-archive's entries name
//! the layout's blobs, so no layer is stored twice. `load` takes a
//! docker-archive, an OCI image layout (skopeo's `oci-archive:`), or the
//! two in one, of which it reads `manifest.json` as Docker's own store
//! does.
//!
//! The archive is unpacked into a scratch directory first, since
//! `manifest.json` or `index.json` may come last. This module owns that
//! unpacked tree ([`Unpacked`]) and the rules for reading it, which the
//! OCI side reads through too: names inside the archive only, regular
//! files only, no symlink leading out.

use std::cell::Cell;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::{oci, reference, ImageError, ImageStore, Result};

/// The docker-archive's index of images (Docker's image/tarexport).
pub const MANIFEST_FILE: &str = "manifest.json";
/// The legacy `{repository: {tag: top layer}}` map Docker still writes.
pub const REPOSITORIES_FILE: &str = "repositories";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// An image as read from an archive, checked and ready for the store.
pub(super) struct ArchivedImage {
    /// The configuration's bytes (their digest is the image ID).
    pub config: Vec<u8>,
    /// The layers' uncompressed tarballs, bottom first.
    pub layers: Vec<PathBuf>,
    /// Canonical `name:tag`s to point at it.
    pub names: Vec<String>,
}

/// An archive unpacked into a scratch directory of the store; removed
/// when dropped.
pub(super) struct Unpacked {
    scratch: tempfile::TempDir,
    /// The unpacked archive, canonical.
    root: PathBuf,
    /// How many layers were decompressed beside it.
    plain: Cell<usize>,
}

impl Unpacked {
    /// Unpacks the tar stream `input`; entries that would land outside
    /// the directory are refused.
    fn read(store: &ImageStore, input: impl Read) -> Result<Unpacked> {
        let scratch = store.scratch()?;
        // Decompressed layers go beside the archive, never among its
        // entries: an entry could be a symlink where one is written.
        let dir = scratch.path().join("archive");
        for d in [dir.clone(), scratch.path().join("plain")] {
            std::fs::create_dir(&d).map_err(|e| ImageError::io("create", &d, e))?;
        }
        let mut archive = tar::Archive::new(input);
        let reading = |e: std::io::Error| ImageError::Invalid(format!("reading the archive: {e}"));
        for entry in archive.entries().map_err(reading)? {
            let mut entry = entry.map_err(reading)?;
            let name = entry.path().map(|p| p.display().to_string()).unwrap_or_default();
            match entry.unpack_in(&dir) {
                Ok(true) => {}
                Ok(false) => return Err(ImageError::Invalid(format!("archive entry {name:?} points outside the archive"))),
                Err(e) => return Err(ImageError::Invalid(format!("archive entry {name:?}: {e}"))),
            }
        }
        let root = dir.canonicalize().map_err(|e| ImageError::io("resolve", &dir, e))?;
        Ok(Unpacked {
            scratch,
            root,
            plain: Cell::new(0),
        })
    }

    /// Whether the archive has an entry `name`, of any kind.
    pub fn has(&self, name: &str) -> bool {
        std::fs::symlink_metadata(self.root.join(name)).is_ok()
    }

    /// The archive's regular file `name` (relative, symlinks inside the
    /// archive followed).
    pub fn file(&self, name: &str) -> Result<PathBuf> {
        let p = Path::new(name);
        if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(ImageError::Invalid(format!("{name:?} names a file outside the archive")));
        }
        if !self.has(name) {
            return Err(ImageError::Invalid(format!("{name} is not in the archive")));
        }
        let real = self
            .root
            .join(p)
            .canonicalize()
            .map_err(|e| ImageError::Invalid(format!("{name}: {e}")))?;
        let meta = std::fs::symlink_metadata(&real).map_err(|e| ImageError::io("stat", &real, e))?;
        if !real.starts_with(&self.root) || !meta.is_file() {
            return Err(ImageError::Invalid(format!("{name} is not a file inside the archive")));
        }
        Ok(real)
    }

    /// The content of the archive's regular file `name`.
    pub fn read_file(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.file(name)?;
        std::fs::read(&path).map_err(|e| ImageError::Invalid(format!("{name}: {e}")))
    }

    /// The uncompressed form of the layer tarball at `path` (a file of
    /// this archive): itself if plain, else decompressed beside the
    /// archive (a layer's diffID and kept tarball are the uncompressed
    /// stream's).
    pub fn plain_layer(&self, path: &Path) -> Result<PathBuf> {
        let shown = path.strip_prefix(&self.root).unwrap_or(path).display().to_string();
        if !berth_fs::layer::apply::is_compressed(path).map_err(|e| ImageError::io("read", path, e))? {
            return Ok(path.to_path_buf());
        }
        let n = self.plain.replace(self.plain.get() + 1);
        let out_path = self.scratch.path().join("plain").join(format!("{n}.tar"));
        let f = std::fs::File::open(path).map_err(|e| ImageError::io("open", path, e))?;
        let mut plain = berth_fs::layer::apply::decompressed(f).map_err(|e| ImageError::Invalid(format!("layer {shown}: {e}")))?;
        let mut out = std::fs::File::create(&out_path).map_err(|e| ImageError::io("create", &out_path, e))?;
        std::io::copy(&mut plain, &mut out).map_err(|e| ImageError::Invalid(format!("layer {shown}: {e}")))?;
        Ok(out_path)
    }
}

/// Loads every image of the archive read from `input` (a docker-archive,
/// an OCI image layout, or both in one); returns, per image, its ID and
/// the names now pointing at it. Every image is read and checked before
/// any is stored.
pub fn load(store: &ImageStore, input: impl Read) -> Result<Vec<(String, Vec<String>)>> {
    let archive = Unpacked::read(store, input)?;
    let images = if archive.has(MANIFEST_FILE) {
        docker_images(&archive)?
    } else if archive.has(oci::INDEX_FILE) {
        oci::images(&archive)?
    } else {
        return Err(ImageError::Invalid(format!(
            "the archive has neither {MANIFEST_FILE} (a docker-archive) nor {} (an OCI image layout)",
            oci::INDEX_FILE
        )));
    };
    let mut loaded = Vec::new();
    for image in images {
        let added = store.add(&image.config, &image.layers, &image.names)?;
        loaded.push((added.id, image.names));
    }
    Ok(loaded)
}

/// The images `manifest.json` lists.
fn docker_images(archive: &Unpacked) -> Result<Vec<ArchivedImage>> {
    let manifest = archive.read_file(MANIFEST_FILE)?;
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(&manifest).map_err(|e| ImageError::Invalid(format!("{MANIFEST_FILE}: {e}")))?;
    let mut images = Vec::new();
    for e in entries {
        let config = archive.read_file(&e.config)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            layers.push(archive.plain_layer(&archive.file(l)?)?);
        }
        let names = e.repo_tags.unwrap_or_default();
        if let Some(bad) = names.iter().find(|t| reference::normalize(t).is_none()) {
            return Err(ImageError::Invalid(format!("invalid reference format: {bad}")));
        }
        images.push(ArchivedImage { config, layers, names });
    }
    Ok(images)
}

/// A tar header for a regular file of `len` bytes, owned by root, dated 0.
pub fn file_header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// `value` as compact JSON.
pub(super) fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| ImageError::Storage(e.to_string()))
}

/// `docker save`: writes the images `references` name to `out` as one
/// archive that is both a docker-archive and an OCI image layout (see the
/// module's documentation), each configuration and layer once.
pub fn save(store: &ImageStore, references: &[String], out: impl std::io::Write) -> Result<()> {
    let mut images = Vec::new();
    for r in references {
        let image = store.resolve(r)?;
        // A name asked for is the tag saved; an ID saves every tag.
        let tags = match reference::normalize(r).filter(|n| store.repositories().get(n) == Some(&image.id)) {
            Some(n) => vec![n],
            None => store.tags_of(&image.id),
        };
        images.push((image, tags));
    }
    let mut layout = oci::LayoutWriter::new(out)?;
    let mut manifest = Vec::new();
    let mut repositories: std::collections::BTreeMap<&str, std::collections::BTreeMap<&str, String>> = Default::default();
    for (image, tags) in &images {
        let blobs = layout.image(store, image, tags)?;
        manifest.push(serde_json::json!({ "Config": blobs.config, "RepoTags": tags, "Layers": blobs.layers }));
        if let Some(top) = image.diff_ids.last() {
            for t in tags {
                // Names are canonical `name:tag`, so the last colon is the tag's.
                if let Some((repo, tag)) = t.rsplit_once(':') {
                    repositories
                        .entry(repo)
                        .or_default()
                        .insert(tag, top.trim_start_matches("sha256:").to_string());
                }
            }
        }
    }
    layout.file(MANIFEST_FILE, &to_json(&manifest)?)?;
    layout.file(REPOSITORIES_FILE, &to_json(&repositories)?)?;
    layout.finish()?;
    Ok(())
}

/// `docker import`: an image of one layer from a root filesystem tarball
/// (plain, gzip or zstd), with an empty configuration; named `tag` if
/// given.
pub fn import(store: &ImageStore, input: impl Read, tag: Option<&str>, message: &str, changes: &[String]) -> Result<super::Image> {
    let mut image_config = serde_json::json!({});
    super::changes::apply(&mut image_config, changes).map_err(ImageError::Invalid)?;
    let scratch = store.scratch()?;
    let layer = scratch.path().join("layer.tar");
    // The layer is kept uncompressed: its diffID is the digest of that.
    let mut plain = berth_fs::layer::apply::decompressed(input).map_err(|e| ImageError::Invalid(format!("reading the tarball: {e}")))?;
    let mut out = std::fs::File::create(&layer).map_err(|e| ImageError::io("create", &layer, e))?;
    let mut hashing = berth_fs::digest::HashingWriter::new(&mut out);
    std::io::copy(&mut plain, &mut hashing).map_err(|e| ImageError::Invalid(format!("reading the tarball: {e}")))?;
    let (_, diff_id, _) = hashing.finish();
    // With nanoseconds, as Docker's: two imports of one tarball are two images.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let created = crate::daemon::rfc3339(now.as_secs() as i64).replace('Z', &format!(".{:09}Z", now.subsec_nanos()));
    let config = serde_json::json!({
        "architecture": crate::daemon::goarch(),
        "os": "linux",
        "created": created,
        "config": image_config,
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
        "history": [{ "created": created, "comment": message, "created_by": "" }],
    });
    let bytes = to_json(&config)?;
    let tags: Vec<String> = tag.map(|t| vec![t.to_string()]).unwrap_or_default();
    store.add(&bytes, &[layer], &tags)
}
