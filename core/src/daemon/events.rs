//! `GET /events`: what happened to containers, images and volumes, as
//! Docker's event objects, live and from a window of recent ones kept
//! in memory (for `--since`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use super::body::{self, Body};
use super::Failure;

/// Events kept for `since`.
const KEPT: usize = 1024;

pub struct Events {
    tx: broadcast::Sender<Value>,
    recent: Mutex<VecDeque<Value>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(256).0,
            recent: Mutex::new(VecDeque::new()),
        }
    }
}

impl Events {
    /// Records one event: `kind` container, image, volume or network.
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: Map<String, Value>) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut v = json!({
            "Type": kind,
            "Action": action,
            "Actor": { "ID": id, "Attributes": attributes },
            "scope": "local",
            "time": now.as_secs(),
            "timeNano": now.as_nanos() as u64,
        });
        // The fields of the API before 1.22, which the docker CLI still reads.
        if kind == "container" || kind == "image" {
            v["status"] = json!(action);
            v["id"] = json!(id);
            if let Some(image) = attributes_image(&v) {
                v["from"] = json!(image);
            }
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(v.clone());
        drop(recent);
        let _ = self.tx.send(v);
    }

    /// A container event, with its name, image and labels as attributes.
    pub fn container(&self, action: &str, r: &crate::container::Record, extra: &[(&str, String)]) {
        let mut a = Map::new();
        if let Some(labels) = r.config["Labels"].as_object() {
            a.extend(labels.clone());
        }
        a.insert("name".into(), json!(r.name));
        a.insert("image".into(), r.config["Image"].clone());
        for (k, v) in extra {
            a.insert(k.to_string(), json!(v));
        }
        self.emit("container", action, &r.id, a);
    }

    /// An image or volume event with plain attributes.
    pub fn simple(&self, kind: &str, action: &str, id: &str, attrs: &[(&str, String)]) {
        let a: Map<String, Value> = attrs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        self.emit(kind, action, id, a);
    }
}

fn attributes_image(v: &Value) -> Option<String> {
    v["Actor"]["Attributes"]["image"].as_str().map(str::to_string)
}

fn nanos(v: &Value) -> u128 {
    u128::from(v["timeNano"].as_u64().unwrap_or(0))
}

/// Whether `v` passes Docker's event filters.
fn passes(v: &Value, f: &std::collections::BTreeMap<String, Vec<String>>) -> bool {
    let attrs = &v["Actor"]["Attributes"];
    let id = v["Actor"]["ID"].as_str().unwrap_or_default();
    let any = |key: &str, test: &dyn Fn(&str) -> bool| f.get(key).is_none_or(|vals| vals.iter().any(|x| test(x)));
    any("type", &|t| v["Type"] == t)
        && any("event", &|e| {
            v["Action"].as_str().is_some_and(|a| a == e || a.split(':').next() == Some(e))
        })
        && any("container", &|c| {
            v["Type"] == "container" && (id.starts_with(c) || attrs["name"] == c)
        })
        && any("image", &|i| {
            attrs["image"] == i || (v["Type"] == "image" && (id == i || attrs["name"] == i))
        })
        && any("volume", &|n| v["Type"] == "volume" && id == n)
        && f.get("label").is_none_or(|vals| {
            vals.iter().all(|l| match l.split_once('=') {
                Some((k, val)) => attrs[k] == val,
                None => !attrs[l.as_str()].is_null(),
            })
        })
}

/// `GET /events?since=&until=&filters=`.
pub fn stream(events: &Events, q: &std::collections::BTreeMap<String, String>) -> Result<Response<Body>, Failure> {
    let f = super::filters(q).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    super::only_filters(
        &f,
        &[
            "type",
            "event",
            "container",
            "image",
            "volume",
            "label",
            "network",
            "daemon",
            "plugin",
            "scope",
        ],
    )
    .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let time = |k: &str| -> Result<Option<u128>, Failure> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => crate::time::parse_timestamp(v)
                .map(|t| Some(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()))
                .ok_or_else(|| (StatusCode::BAD_REQUEST, format!("invalid value for \"{k}\": {v:?}"))),
        }
    };
    let (since, until) = (time("since")?, time("until")?);
    // Subscribed before the window is read, so nothing falls between.
    let mut rx = events.tx.subscribe();
    let past: Vec<Value> = match since {
        Some(s) => events
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|v| nanos(v) >= s)
            .cloned()
            .collect(),
        None => vec![],
    };
    let last_past = past.last().map(nanos).unwrap_or(0);
    let (tx, body) = body::channel();
    tokio::spawn(async move {
        let line = |v: &Value| Bytes::from(format!("{v}\n"));
        for v in past.iter().filter(|v| passes(v, &f) && until.is_none_or(|u| nanos(v) <= u)) {
            if tx.send(line(v)).await.is_err() {
                return;
            }
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let wait = until.map(|u| std::time::Duration::from_nanos(u.saturating_sub(now) as u64));
        let live = async {
            loop {
                match rx.recv().await {
                    Ok(v) => {
                        if nanos(&v) <= last_past || !passes(&v, &f) {
                            continue;
                        }
                        if until.is_some_and(|u| nanos(&v) > u) || tx.send(line(&v)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        match wait {
            Some(w) => {
                let _ = tokio::time::timeout(w, live).await;
            }
            None => live.await,
        }
    });
    let mut reply = Response::new(body);
    reply
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("static header"));
    Ok(reply)
}
