//! The image endpoints: `/images/load`, `/images/json`,
//! `/images/{name}/json`, `/images/{name}/tag`, `DELETE /images/{name}`.

use hyper::StatusCode;
use serde_json::{json, Value};

use super::rfc3339;
use crate::image::{archive, Image, ImageError, ImageStore};

pub type Failure = (StatusCode, String);

fn failure(e: ImageError) -> Failure {
    let status = match &e {
        ImageError::NotFound(_) => StatusCode::NOT_FOUND,
        ImageError::Invalid(_) => StatusCode::BAD_REQUEST,
        ImageError::Conflict(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.to_string())
}

/// `POST /images/load`: a docker-archive in the body; answers Docker's
/// JSON message stream.
pub fn load(store: &ImageStore, body: &[u8]) -> Result<String, Failure> {
    let loaded = archive::load(store, body).map_err(failure)?;
    let mut out = String::new();
    for (id, tags) in loaded {
        if tags.is_empty() {
            out.push_str(&json!({ "stream": format!("Loaded image ID: {id}\n") }).to_string());
        }
        for t in tags {
            out.push_str(&json!({ "stream": format!("Loaded image: {t}\n") }).to_string());
        }
        out.push('\n');
    }
    Ok(out)
}

fn created(store: &ImageStore, image: &Image) -> (i64, String) {
    // The configuration's own creation time when it has one.
    let cfg = store.config(image).unwrap_or_default();
    match cfg["created"].as_str() {
        Some(c) => (image.loaded, c.to_string()),
        None => (image.loaded, rfc3339(image.loaded)),
    }
}

/// `GET /images/json`.
pub fn list(store: &ImageStore) -> Value {
    let out: Vec<Value> = store
        .images()
        .iter()
        .map(|i| {
            let (secs, _) = created(store, i);
            let cfg = store.config(i).unwrap_or_default();
            json!({
                "Id": i.id,
                "ParentId": "",
                "RepoTags": store.tags_of(&i.id),
                "RepoDigests": [],
                "Created": secs,
                "Size": i.size,
                "SharedSize": -1,
                "VirtualSize": i.size,
                "Labels": cfg["config"]["Labels"].clone(),
                "Containers": -1,
            })
        })
        .collect();
    Value::Array(out)
}

/// `GET /images/{name}/json`.
pub fn inspect(store: &ImageStore, reference: &str) -> Result<Value, Failure> {
    let i = store.resolve(reference).map_err(failure)?;
    let cfg = store.config(&i).map_err(failure)?;
    let (_, created) = created(store, &i);
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

/// `GET /images/{name}/get` and `GET /images/get?names=...`: a
/// docker-archive of the images.
pub fn save(store: &ImageStore, names: &[String]) -> Result<Vec<u8>, Failure> {
    if names.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "no images to save".into()));
    }
    let mut out = Vec::new();
    archive::save(store, names, &mut out).map_err(failure)?;
    Ok(out)
}
