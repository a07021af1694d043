//! `docker load`: images from a docker-archive tarball (the format `docker
//! save` writes: `manifest.json` listing each image's configuration,
//! tags and layer tarballs). The archive is unpacked into a scratch
//! directory first, since `manifest.json` may come last.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::{ImageError, ImageStore, Result};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Loads every image of the archive read from `input`; returns, per
/// image, its ID and the names now pointing at it.
pub fn load(store: &ImageStore, input: impl Read) -> Result<Vec<(String, Vec<String>)>> {
    let scratch = store.scratch()?;
    let dir = scratch.path();
    let mut archive = tar::Archive::new(input);
    for entry in archive
        .entries()
        .map_err(|e| ImageError::Invalid(format!("reading the archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| ImageError::Invalid(format!("reading the archive: {e}")))?;
        // unpack_in refuses names that climb out of the directory.
        let name = entry.path().map(|p| p.display().to_string()).unwrap_or_default();
        match entry.unpack_in(dir) {
            Ok(true) => {}
            Ok(false) => return Err(ImageError::Invalid(format!("archive entry {name:?} points outside the archive"))),
            Err(e) => return Err(ImageError::Invalid(format!("archive entry {name:?}: {e}"))),
        }
    }
    let root = dir.canonicalize().map_err(|e| ImageError::io("resolve", dir, e))?;
    // Entries are read only as regular files inside the scratch
    // directory: a symlink in the archive must not lead berthd elsewhere.
    let regular = |p: &Path| -> Result<std::path::PathBuf> {
        let shown = p.strip_prefix(dir).unwrap_or(p).display().to_string();
        let real = p.canonicalize().map_err(|e| ImageError::Invalid(format!("{shown}: {e}")))?;
        let meta = std::fs::symlink_metadata(&real).map_err(|e| ImageError::io("stat", &real, e))?;
        if !real.starts_with(&root) || !meta.is_file() {
            return Err(ImageError::Invalid(format!("{shown} is not a file inside the archive")));
        }
        Ok(real)
    };
    let manifest_path = dir.join("manifest.json");
    if !manifest_path.exists() {
        return Err(ImageError::Invalid(
            "the archive has no manifest.json (not a docker-archive)".into(),
        ));
    }
    let manifest = std::fs::read(regular(&manifest_path)?).map_err(|e| ImageError::io("read", &manifest_path, e))?;
    let entries: Vec<ManifestEntry> = serde_json::from_slice(&manifest).map_err(|e| ImageError::Invalid(format!("manifest.json: {e}")))?;
    let inside = |rel: &str| -> Result<std::path::PathBuf> {
        let p = Path::new(rel);
        if p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(ImageError::Invalid(format!("manifest.json names {rel:?} outside the archive")));
        }
        regular(&dir.join(p))
    };
    let mut loaded = Vec::new();
    for e in entries {
        let config = std::fs::read(inside(&e.config)?).map_err(|err| ImageError::Invalid(format!("configuration {}: {err}", e.config)))?;
        let mut layers = Vec::new();
        for (i, l) in e.layers.iter().enumerate() {
            layers.push(plain_layer(&inside(l)?, &dir.join(format!(".plain-{}-{i}.tar", loaded.len())))?);
        }
        let tags = e.repo_tags.unwrap_or_default();
        let image = store.add(&config, &layers, &tags)?;
        loaded.push((image.id, tags));
    }
    Ok(loaded)
}

/// The uncompressed form of the layer tarball at `path`: itself if plain,
/// else decompressed into `scratch` (a layer's diffID and kept tarball are
/// the uncompressed stream's).
fn plain_layer(path: &Path, scratch: &Path) -> Result<std::path::PathBuf> {
    if !berth_fs::layer::apply::is_compressed(path).map_err(|e| ImageError::io("read", path, e))? {
        return Ok(path.to_path_buf());
    }
    let f = std::fs::File::open(path).map_err(|e| ImageError::io("open", path, e))?;
    let mut plain = berth_fs::layer::apply::decompressed(f).map_err(|e| ImageError::Invalid(format!("{}: {e}", path.display())))?;
    let mut out = std::fs::File::create(scratch).map_err(|e| ImageError::io("create", scratch, e))?;
    std::io::copy(&mut plain, &mut out).map_err(|e| ImageError::Invalid(format!("{}: {e}", path.display())))?;
    Ok(scratch.to_path_buf())
}

/// A tar header for a regular file of `len` bytes, owned by root, dated 0.
fn file_header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// `docker save`: writes the images `references` name as one
/// docker-archive to `out`: each configuration, each layer's tarball
/// (once, by diffID), and `manifest.json` with the names asked for.
pub fn save(store: &ImageStore, references: &[String], out: impl std::io::Write) -> Result<()> {
    let mut manifest = Vec::new();
    let mut images = Vec::new();
    for r in references {
        let image = store.resolve(r)?;
        // A name asked for is the tag saved; an ID saves every tag.
        let tags = match super::reference::normalize(r).filter(|n| store.repositories().get(n) == Some(&image.id)) {
            Some(n) => vec![n],
            None => store.tags_of(&image.id),
        };
        images.push((image, tags));
    }
    let mut tar = tar::Builder::new(out);
    let mut written = std::collections::HashSet::new();
    let add = |tar: &mut tar::Builder<_>, name: &str, path: &Path| -> Result<()> {
        let mut f = std::fs::File::open(path).map_err(|e| ImageError::io("open", path, e))?;
        let len = f.metadata().map_err(|e| ImageError::io("stat", path, e))?.len();
        tar.append_data(&mut file_header(len), name, &mut f)
            .map_err(|e| ImageError::io("write archive", path, e))
    };
    for (image, tags) in &images {
        let hex = image.id.trim_start_matches("sha256:");
        let config_name = format!("{hex}.json");
        if written.insert(config_name.clone()) {
            let path = store.config_blob(image)?;
            add(&mut tar, &config_name, &path)?;
        }
        let mut layers = Vec::new();
        for diff in &image.diff_ids {
            let name = format!("{}/layer.tar", diff.trim_start_matches("sha256:"));
            if written.insert(name.clone()) {
                let path = store
                    .layer_blob(diff)
                    .ok_or_else(|| ImageError::Storage(format!("layer {diff} has no tarball")))?;
                add(&mut tar, &name, &path)?;
            }
            layers.push(name);
        }
        manifest.push(serde_json::json!({ "Config": config_name, "RepoTags": tags, "Layers": layers }));
    }
    let json = serde_json::to_vec(&manifest).map_err(|e| ImageError::Storage(e.to_string()))?;
    tar.append_data(&mut file_header(json.len() as u64), "manifest.json", json.as_slice())
        .map_err(|e| ImageError::io("write archive", "manifest.json", e))?;
    tar.finish().map_err(|e| ImageError::io("write archive", "", e))
}

/// `docker import`: an image of one layer from a root filesystem tarball
/// (plain, gzip or zstd), with an empty configuration; named `tag` if
/// given.
pub fn import(store: &ImageStore, input: impl Read, tag: Option<&str>, message: &str) -> Result<super::Image> {
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
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
        "history": [{ "created": created, "comment": message, "created_by": "" }],
    });
    let bytes = serde_json::to_vec(&config).map_err(|e| ImageError::Storage(e.to_string()))?;
    let tags: Vec<String> = tag.map(|t| vec![t.to_string()]).unwrap_or_default();
    store.add(&bytes, &[layer], &tags)
}
