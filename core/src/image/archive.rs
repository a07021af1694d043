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
    let manifest_path = dir.join("manifest.json");
    let manifest =
        std::fs::read(&manifest_path).map_err(|_| ImageError::Invalid("the archive has no manifest.json (not a docker-archive)".into()))?;
    let entries: Vec<ManifestEntry> = serde_json::from_slice(&manifest).map_err(|e| ImageError::Invalid(format!("manifest.json: {e}")))?;
    let inside = |rel: &str| -> Result<std::path::PathBuf> {
        let p = Path::new(rel);
        if p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(ImageError::Invalid(format!("manifest.json names {rel:?} outside the archive")));
        }
        Ok(dir.join(p))
    };
    let mut loaded = Vec::new();
    for e in entries {
        let config = std::fs::read(inside(&e.config)?).map_err(|err| ImageError::Invalid(format!("configuration {}: {err}", e.config)))?;
        let layers = e.layers.iter().map(|l| inside(l)).collect::<Result<Vec<_>>>()?;
        let tags = e.repo_tags.unwrap_or_default();
        let image = store.add(&config, &layers, &tags)?;
        loaded.push((image.id, tags));
    }
    Ok(loaded)
}
