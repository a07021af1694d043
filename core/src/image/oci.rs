//! The OCI image layout (image-spec `image-layout.md`) inside image
//! archives: `oci-layout`, `index.json` and `blobs/sha256/<hex>`.
//!
//! Reading: [`images`] follows `index.json` to each image manifest
//! (through an image index, to the entry for linux on this machine's
//! architecture), checks every blob's size and sha256 against its
//! descriptor, and names the image from the descriptor's annotations.
//! Writing: [`LayoutWriter`] puts each configuration, layer and manifest
//! into a tar stream once, then `index.json` and `oci-layout`; the
//! docker-archive side of a save adds its own files through it. This
//! module does not unpack archives or keep their reading rules; that is
//! [`super::archive::Unpacked`]'s.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

use berth_fs::digest::{Digest, HashingReader};
use serde::{Deserialize, Serialize};

use super::archive::{file_header, to_json, ArchivedImage, Unpacked};
use super::{reference, Image, ImageError, ImageStore, Result};

/// The layout's marker file and the one version of it there is
/// (image-spec image-layout.md).
pub const LAYOUT_FILE: &str = "oci-layout";
pub const LAYOUT_VERSION: &str = "1.0.0";
/// The layout's entry point, an image index (image-layout.md).
pub const INDEX_FILE: &str = "index.json";
/// Where blobs live, by algorithm and hex digest (image-layout.md).
pub const BLOBS_DIR: &str = "blobs/sha256";

/// Media types (image-spec media-types.md, and Docker's schema 2 ones,
/// which skopeo and older tools also write into layouts).
pub mod media_type {
    pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const LAYER_NONDISTRIBUTABLE: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const LAYER_NONDISTRIBUTABLE_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const LAYER_NONDISTRIBUTABLE_ZSTD: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// The layer types berth unpacks (compression is told by content).
    pub const LAYERS: &[&str] = &[
        LAYER,
        LAYER_GZIP,
        LAYER_ZSTD,
        LAYER_NONDISTRIBUTABLE,
        LAYER_NONDISTRIBUTABLE_GZIP,
        LAYER_NONDISTRIBUTABLE_ZSTD,
        DOCKER_LAYER,
        DOCKER_LAYER_GZIP,
    ];
}

/// The tag of an image in a layout (image-spec annotations.md); skopeo
/// and umoci write a bare tag here, Docker the tag of the image's name.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The image's full name (containerd's `images.AnnotationImageName`),
/// which Docker 25 writes and reads.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// How deep image indexes may nest before a manifest is reached.
const MAX_INDEX_DEPTH: usize = 4;

/// A content descriptor (image-spec descriptor.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// The platform of an image index entry (image-spec image-index.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image index (image-index.md); `index.json` is one.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

/// An image manifest (manifest.md).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// `oci-layout`'s content.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

fn invalid(message: String) -> ImageError {
    ImageError::Invalid(message)
}

fn is_index(kind: &str) -> bool {
    kind == media_type::INDEX || kind == media_type::DOCKER_MANIFEST_LIST
}

fn is_manifest(kind: &str) -> bool {
    kind == media_type::MANIFEST || kind == media_type::DOCKER_MANIFEST
}

// ---- Reading ----

/// The images of the OCI image layout in `archive`, every blob checked.
/// Descriptors of `index.json` that are neither manifests nor indexes
/// (attestations, artifacts) are passed over; several naming one
/// manifest give one image with all their names.
pub(super) fn images(archive: &Unpacked) -> Result<Vec<ArchivedImage>> {
    if archive.has(LAYOUT_FILE) {
        let marker: LayoutMarker = parse(&archive.read_file(LAYOUT_FILE)?, LAYOUT_FILE)?;
        if marker.image_layout_version != LAYOUT_VERSION {
            return Err(invalid(format!(
                "{LAYOUT_FILE}: image layout version {:?} is not {LAYOUT_VERSION}",
                marker.image_layout_version
            )));
        }
    }
    let index: Index = parse(&archive.read_file(INDEX_FILE)?, INDEX_FILE)?;
    let mut found: Vec<(String, ArchivedImage)> = Vec::new();
    for desc in &index.manifests {
        let Some(manifest) = image_manifest(archive, desc, 0)? else {
            continue;
        };
        let name = name_of(&desc.annotations);
        if let Some((_, image)) = found.iter_mut().find(|(d, _)| *d == manifest.digest) {
            image.names.extend(name.filter(|n| !image.names.contains(n)));
            continue;
        }
        let mut image = image(archive, &manifest)?;
        image.names.extend(name);
        found.push((manifest.digest, image));
    }
    if found.is_empty() {
        return Err(invalid(format!("{INDEX_FILE} lists no image manifest")));
    }
    Ok(found.into_iter().map(|(_, image)| image).collect())
}

/// The image manifest `desc` leads to: itself, or through image indexes
/// the entry for linux on this architecture; None if `desc` is neither.
fn image_manifest(archive: &Unpacked, desc: &Descriptor, depth: usize) -> Result<Option<Descriptor>> {
    if is_manifest(&desc.media_type) {
        return Ok(Some(desc.clone()));
    }
    if !is_index(&desc.media_type) {
        return Ok(None);
    }
    if depth == MAX_INDEX_DEPTH {
        return Err(invalid(format!("image index {} nests indexes too deep", desc.digest)));
    }
    let index: Index = parse(&blob(archive, desc)?, &format!("image index {}", desc.digest))?;
    let arch = crate::daemon::goarch();
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| is_manifest(&d.media_type) || is_index(&d.media_type))
        .collect();
    let matching = candidates
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch));
    // An entry without a platform is taken only when it is the only one.
    let chosen = match (matching, candidates.as_slice()) {
        (Some(d), _) => d,
        (None, [only]) if only.platform.is_none() => only,
        _ => return Err(invalid(format!("image index {} has no image for linux/{arch}", desc.digest))),
    };
    image_manifest(archive, chosen, depth + 1)
}

/// The configuration and plain layers of the image manifest `desc`.
fn image(archive: &Unpacked, desc: &Descriptor) -> Result<ArchivedImage> {
    let what = format!("image manifest {}", desc.digest);
    let manifest: Manifest = parse(&blob(archive, desc)?, &what)?;
    let config_type = manifest.config.media_type.as_str();
    if config_type != media_type::CONFIG && config_type != media_type::DOCKER_CONFIG {
        return Err(invalid(format!("{what}: its configuration is a {config_type:?}, not an image's")));
    }
    let config = blob(archive, &manifest.config)?;
    let mut layers = Vec::new();
    for layer in &manifest.layers {
        if !media_type::LAYERS.contains(&layer.media_type.as_str()) {
            return Err(invalid(format!(
                "{what}: layer {} is a {:?}, which berth cannot unpack",
                layer.digest, layer.media_type
            )));
        }
        let path = checked_blob(archive, layer)?;
        layers.push(archive.plain_layer(&path)?);
    }
    Ok(ArchivedImage {
        config,
        layers,
        names: Vec::new(),
    })
}

/// The bytes of the blob `desc` describes, checked.
fn blob(archive: &Unpacked, desc: &Descriptor) -> Result<Vec<u8>> {
    let path = checked_blob(archive, desc)?;
    std::fs::read(&path).map_err(|e| ImageError::io("read", &path, e))
}

/// The path of the blob `desc` describes, once its size and sha256 are
/// found to be the descriptor's.
fn checked_blob(archive: &Unpacked, desc: &Descriptor) -> Result<std::path::PathBuf> {
    let digest: Digest = desc.digest.parse().map_err(|e| invalid(format!("descriptor: {e}")))?;
    let name = format!("{BLOBS_DIR}/{}", digest.hex());
    if !archive.has(&name) {
        return Err(invalid(format!("blob {digest} is not in the archive")));
    }
    let path = archive.file(&name)?;
    let file = std::fs::File::open(&path).map_err(|e| ImageError::io("open", &path, e))?;
    let size = file.metadata().map_err(|e| ImageError::io("stat", &path, e))?.len();
    if size != desc.size {
        return Err(invalid(format!(
            "blob {digest} size {size} does not match the descriptor's {}",
            desc.size
        )));
    }
    let mut hashing = HashingReader::new(file);
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| ImageError::io("read", &path, e))?;
    let (actual, _) = hashing.finish();
    if actual != digest {
        return Err(invalid(format!("blob {digest} does not match its digest: its content is {actual}")));
    }
    Ok(path)
}

/// The name an index entry gives its image: the full name, else a
/// reference name that has a repository. A bare tag ("latest", "1.0"),
/// as skopeo and umoci write, names no image: it is loaded untagged, as
/// Docker does.
fn name_of(annotations: &BTreeMap<String, String>) -> Option<String> {
    if let Some(name) = annotations.get(ANNOTATION_IMAGE_NAME).and_then(|n| reference::normalize(n)) {
        return Some(name);
    }
    let reference = annotations.get(ANNOTATION_REF_NAME)?;
    if !reference.contains(['/', ':']) {
        return None;
    }
    reference::normalize(reference)
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("{what}: {e}")))
}

// ---- Writing ----

/// Where an image's configuration and layers went in a layout: paths
/// from the archive's root, for the docker-archive's `manifest.json`.
pub(super) struct ImageBlobs {
    pub config: String,
    pub layers: Vec<String>,
}

/// An OCI image layout being written into a tar stream.
pub(super) struct LayoutWriter<W: Write> {
    tar: tar::Builder<W>,
    written: HashSet<Digest>,
    index: Vec<Descriptor>,
}

impl<W: Write> LayoutWriter<W> {
    /// Starts the layout with its blob directories.
    pub fn new(out: W) -> Result<Self> {
        let mut tar = tar::Builder::new(out);
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = file_header(0);
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            tar.append_data(&mut h, dir, std::io::empty())
                .map_err(|e| ImageError::io("write archive", dir, e))?;
        }
        Ok(LayoutWriter {
            tar,
            written: HashSet::new(),
            index: Vec::new(),
        })
    }

    /// Adds the file at `path`, whose content has `digest`, as a blob
    /// unless already there; its size.
    fn blob_file(&mut self, digest: &Digest, path: &Path) -> Result<u64> {
        let mut f = std::fs::File::open(path).map_err(|e| ImageError::io("open", path, e))?;
        let len = f.metadata().map_err(|e| ImageError::io("stat", path, e))?.len();
        if self.written.insert(digest.clone()) {
            let name = format!("{BLOBS_DIR}/{}", digest.hex());
            self.tar
                .append_data(&mut file_header(len), &name, &mut f)
                .map_err(|e| ImageError::io("write archive", path, e))?;
        }
        Ok(len)
    }

    /// Adds the configuration, layers and a manifest of `image`, and an
    /// `index.json` entry per name in `names` (one without a name if
    /// there is none).
    pub fn image(&mut self, store: &ImageStore, image: &Image, names: &[String]) -> Result<ImageBlobs> {
        let config_digest: Digest = image
            .id
            .parse()
            .map_err(|e| ImageError::Storage(format!("image {}: {e}", image.id)))?;
        let config_size = self.blob_file(&config_digest, &store.config_blob(image)?)?;
        let mut layers = Vec::new();
        for diff in &image.diff_ids {
            let digest: Digest = diff.parse().map_err(|e| ImageError::Storage(format!("layer {diff}: {e}")))?;
            let path = store
                .layer_blob(diff)
                .ok_or_else(|| ImageError::Storage(format!("layer {diff} has no tarball")))?;
            // Stored uncompressed: the blob's digest is the diffID.
            let size = self.blob_file(&digest, &path)?;
            layers.push(descriptor(media_type::LAYER, &digest, size));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media_type::MANIFEST.into()),
            config: descriptor(media_type::CONFIG, &config_digest, config_size),
            layers,
        };
        let bytes = to_json(&manifest)?;
        let digest = Digest::of(&bytes);
        if self.written.insert(digest.clone()) {
            let name = format!("{BLOBS_DIR}/{}", digest.hex());
            self.file(&name, &bytes)?;
        }
        let mut entry = descriptor(media_type::MANIFEST, &digest, bytes.len() as u64);
        let cfg = store.config(image)?;
        if let (Some(os), Some(architecture)) = (cfg["os"].as_str(), cfg["architecture"].as_str()) {
            entry.platform = Some(Platform {
                architecture: architecture.into(),
                os: os.into(),
                variant: cfg["variant"].as_str().map(str::to_string),
            });
        }
        if names.is_empty() {
            self.index.push(entry.clone());
        }
        for name in names {
            let mut named = entry.clone();
            if let Some((_, tag)) = name.rsplit_once(':') {
                named.annotations.insert(ANNOTATION_REF_NAME.into(), tag.into());
            }
            named.annotations.insert(ANNOTATION_IMAGE_NAME.into(), full_name(name));
            self.index.push(named);
        }
        let path = |d: &Descriptor| format!("{BLOBS_DIR}/{}", d.digest.trim_start_matches("sha256:"));
        Ok(ImageBlobs {
            config: path(&manifest.config),
            layers: manifest.layers.iter().map(path).collect(),
        })
    }

    /// Adds a regular file `name` holding `bytes`.
    pub fn file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.tar
            .append_data(&mut file_header(bytes.len() as u64), name, bytes)
            .map_err(|e| ImageError::io("write archive", name, e))
    }

    /// Writes `index.json` and `oci-layout` and ends the tar stream.
    pub fn finish(mut self) -> Result<W> {
        let index = Index {
            schema_version: 2,
            media_type: Some(media_type::INDEX.into()),
            manifests: std::mem::take(&mut self.index),
        };
        self.file(INDEX_FILE, &to_json(&index)?)?;
        let marker = LayoutMarker {
            image_layout_version: LAYOUT_VERSION.into(),
        };
        self.file(LAYOUT_FILE, &to_json(&marker)?)?;
        self.tar.into_inner().map_err(|e| ImageError::io("write archive", "", e))
    }
}

fn descriptor(kind: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: kind.into(),
        digest: digest.to_string(),
        size,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

/// The fully qualified form of a canonical `name:tag`, as containerd
/// names images: `busybox:1` is `docker.io/library/busybox:1`.
fn full_name(name: &str) -> String {
    match name.split_once('/') {
        None => format!("docker.io/library/{name}"),
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => name.to_string(),
        Some(_) => format!("docker.io/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_annotations_as_dockers() {
        let a = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(name_of(&a(&[(ANNOTATION_REF_NAME, "latest")])), None, "a bare tag");
        assert_eq!(name_of(&a(&[(ANNOTATION_REF_NAME, "1.0")])), None);
        assert_eq!(
            name_of(&a(&[
                (ANNOTATION_REF_NAME, "latest"),
                (ANNOTATION_IMAGE_NAME, "docker.io/library/busybox:latest")
            ]))
            .as_deref(),
            Some("busybox:latest")
        );
        assert_eq!(
            name_of(&a(&[(ANNOTATION_REF_NAME, "example.com/app:v1")])).as_deref(),
            Some("example.com/app:v1")
        );
        assert_eq!(name_of(&a(&[])), None);
    }

    #[test]
    fn full_names_round_trip_through_normalize() {
        for (short, full) in [
            ("busybox:latest", "docker.io/library/busybox:latest"),
            ("team/app:v1", "docker.io/team/app:v1"),
            ("localhost:5000/app:v2", "localhost:5000/app:v2"),
            ("example.com/a/b:c", "example.com/a/b:c"),
            ("localhost/app:v1", "localhost/app:v1"),
        ] {
            assert_eq!(full_name(short), full);
            assert_eq!(reference::normalize(full).as_deref(), Some(short));
        }
    }
}
