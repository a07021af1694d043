//! The image endpoints: `/images/load`, `/images/get`, `/images/json`,
//! `/images/{name}/json`, `/images/{name}/tag`, `DELETE /images/{name}`.

use hyper::StatusCode;
use serde_json::{json, Value};

use super::rfc3339;
use crate::image::{archive, Image, ImageError, ImageStore};

pub type Failure = (StatusCode, String);

pub fn failure(e: ImageError) -> Failure {
    let status = match &e {
        ImageError::NotFound(_) => StatusCode::NOT_FOUND,
        ImageError::Invalid(_) => StatusCode::BAD_REQUEST,
        ImageError::Conflict(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.to_string())
}

/// `POST /images/load`: a docker-archive, an OCI image layout tarball
/// (skopeo's `oci-archive:`) or the two in one (what `save` writes) in
/// the body; answers Docker's JSON message stream.
pub fn load(store: &ImageStore, body: impl std::io::Read) -> Result<String, Failure> {
    let loaded = archive::load(store, body).map_err(failure)?;
    let mut out = String::new();
    for (id, tags) in loaded {
        if tags.is_empty() {
            out.push_str(&json!({ "stream": format!("Loaded image ID: {id}\n") }).to_string());
            out.push('\n');
        }
        for t in tags {
            out.push_str(&json!({ "stream": format!("Loaded image: {t}\n") }).to_string());
            out.push('\n');
        }
    }
    Ok(out)
}

/// The configuration's own creation time, else when the image was loaded.
fn created(cfg: &Value, image: &Image) -> String {
    cfg["created"].as_str().map(str::to_string).unwrap_or_else(|| rfc3339(image.loaded))
}

/// The repository of a `name:tag`.
fn repository(name: &str) -> &str {
    name.rsplit_once(':').map(|(r, _)| r).unwrap_or(name)
}

/// Whether an image named `tags` passes Docker's image filters:
/// `dangling` (true: no name) and `reference` (a name, with or without
/// its tag).
fn passes(tags: &[String], filters: &std::collections::BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(k, values)| {
        values.iter().any(|v| match k.as_str() {
            "dangling" => (v == "true" || v == "1") == tags.is_empty(),
            "reference" => {
                let tagged = v.rsplit('/').next().is_some_and(|last| last.contains(':'));
                crate::image::reference::normalize(v)
                    .is_some_and(|w| tags.iter().any(|t| if tagged { *t == w } else { repository(t) == repository(&w) }))
            }
            _ => false,
        })
    })
}

/// `GET /images/json`, filtered (see [`passes`]).
pub fn list(store: &ImageStore, filters: &std::collections::BTreeMap<String, Vec<String>>) -> Value {
    let repos = store.repositories();
    let out: Vec<Value> = store
        .images()
        .iter()
        .filter_map(|i| {
            let tags: Vec<String> = repos.iter().filter(|(_, id)| **id == i.id).map(|(name, _)| name.clone()).collect();
            if !passes(&tags, filters) {
                return None;
            }
            let cfg = store.config(i).unwrap_or_default();
            Some(json!({
                "Id": i.id,
                "ParentId": "",
                "RepoTags": tags,
                "RepoDigests": [],
                "Created": i.loaded,
                "Size": i.size,
                "SharedSize": -1,
                "VirtualSize": i.size,
                "Labels": cfg["config"]["Labels"].clone(),
                "Containers": -1,
            }))
        })
        .collect();
    Value::Array(out)
}

/// `GET /images/{name}/json`.
pub fn inspect(store: &ImageStore, reference: &str) -> Result<Value, Failure> {
    let i = store.resolve(reference).map_err(failure)?;
    let cfg = store.config(&i).map_err(failure)?;
    let created = created(&cfg, &i);
    Ok(json!({
        "Id": i.id,
        "RepoTags": store.tags_of(&i.id),
        "RepoDigests": [],
        "Parent": "",
        "Comment": "",
        "Created": created,
        "Container": "",
        "Config": cfg["config"].clone(),
        "DockerVersion": "",
        "Author": cfg["author"].as_str().unwrap_or(""),
        "Architecture": cfg["architecture"].as_str().unwrap_or(""),
        "Os": cfg["os"].as_str().unwrap_or(""),
        "Size": i.size,
        "VirtualSize": i.size,
        "GraphDriver": { "Name": store.graph_name, "Data": {} },
        "RootFS": { "Type": "layers", "Layers": i.diff_ids },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    }))
}

/// `POST /images/{name}/tag?repo=R&tag=T`.
pub fn tag(store: &ImageStore, reference: &str, repo: Option<&String>, tag: Option<&String>) -> Result<(), Failure> {
    let repo = repo.filter(|r| !r.is_empty()).ok_or((
        StatusCode::BAD_REQUEST,
        "repository name must have at least one component".to_string(),
    ))?;
    let target = match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.clone(),
    };
    store.tag(reference, &target).map_err(failure)
}

/// `DELETE /images/{name}`.
pub fn remove(store: &ImageStore, reference: &str, force: bool) -> Result<Value, Failure> {
    let done = store.remove(reference, force).map_err(failure)?;
    Ok(Value::Array(done.into_iter().map(|(k, v)| json!({ k: v })).collect()))
}

/// `GET /images/{name}/get` and `GET /images/get?names=...`: one tarball
/// of the images that is both a docker-archive and an OCI image layout,
/// as Docker 25's.
pub fn save(store: &ImageStore, names: &[String]) -> Result<Vec<u8>, Failure> {
    if names.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "no images to save".into()));
    }
    let mut out = Vec::new();
    archive::save(store, names, &mut out).map_err(failure)?;
    Ok(out)
}

/// `GET /images/{name}/history`: the configuration's history, newest
/// first, each entry that made a layer carrying that layer's size.
pub fn history(store: &ImageStore, reference: &str) -> Result<Value, Failure> {
    let i = store.resolve(reference).map_err(failure)?;
    let cfg = store.config(&i).map_err(failure)?;
    let mut layers = i.diff_ids.iter().rev();
    let mut out = Vec::new();
    let entries = cfg["history"].as_array().cloned().unwrap_or_default();
    for (n, h) in entries.iter().enumerate().rev() {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        let size = if empty {
            0
        } else {
            layers
                .next()
                .and_then(|d| store.layer_blob(d))
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .unwrap_or(0)
        };
        let created = h["created"].as_str().map(parse_rfc3339).unwrap_or(0);
        out.push(json!({
            "Id": if n + 1 == entries.len() { i.id.clone() } else { "<missing>".to_string() },
            "Created": created,
            "CreatedBy": h["created_by"].as_str().unwrap_or(""),
            "Tags": if n + 1 == entries.len() { json!(store.tags_of(&i.id)) } else { Value::Null },
            "Size": size,
            "Comment": h["comment"].as_str().unwrap_or(""),
        }));
    }
    Ok(Value::Array(out))
}

use crate::time::parse_secs as parse_rfc3339;

/// `POST /images/create?fromSrc=-&repo=R&tag=T` with a root filesystem
/// tarball as the body (`docker import`); answers Docker's message stream.
pub fn import(
    store: &ImageStore,
    body: impl std::io::Read,
    repo: Option<&String>,
    tag: Option<&String>,
    message: Option<&String>,
    changes: &[String],
) -> Result<String, Failure> {
    let name = repo.filter(|r| !r.is_empty()).map(|r| match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{r}:{t}"),
        None => r.clone(),
    });
    let image = archive::import(
        store,
        body,
        name.as_deref(),
        message.map(String::as_str).unwrap_or("Imported from -"),
        changes,
    )
    .map_err(failure)?;
    Ok(format!("{}\n", json!({ "status": image.id })))
}

/// `POST /images/prune`: unnamed images, or every image with the filter
/// `dangling=false`.
pub fn prune(store: &ImageStore, all: bool) -> Result<Value, Failure> {
    let (deleted, reclaimed) = store.prune(all).map_err(failure)?;
    Ok(json!({
        "ImagesDeleted": deleted.iter().map(|id| json!({ "Deleted": id })).collect::<Vec<_>>(),
        "SpaceReclaimed": reclaimed,
    }))
}
