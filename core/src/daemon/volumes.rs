//! The volume endpoints: `/volumes`, `/volumes/create`, `/volumes/{name}`,
//! `/volumes/prune`. Drivers hold the volumes; the daemon keeps what the
//! plugin protocol has no room for (driver, labels, options, creation
//! time) in one record per volume under `<data root>/volume-records`,
//! written atomically.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use berth_plugin::error::DriverError;
use berth_plugin::volume::CreateRequest;
use berth_plugin::Registry;
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What the daemon records of a volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub created_at: String,
}

/// The body of `POST /volumes/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    driver: String,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// An API failure: status and message.
pub type Failure = (StatusCode, String);

/// The status a driver error maps onto.
pub fn status_of(e: &DriverError) -> StatusCode {
    match e {
        DriverError::NotFound { .. } => StatusCode::NOT_FOUND,
        DriverError::Conflict { .. } => StatusCode::CONFLICT,
        DriverError::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn failure(e: DriverError) -> Failure {
    (status_of(&e), e.to_string())
}

fn now_rfc3339() -> String {
    super::rfc3339(crate::time::now_secs())
}

/// The daemon's volumes.
pub struct Volumes {
    records: PathBuf,
    /// Serializes create and remove against each other.
    lock: Mutex<()>,
}

impl Volumes {
    pub fn new(data_root: &std::path::Path) -> std::io::Result<Volumes> {
        let records = data_root.join("volume-records");
        std::fs::create_dir_all(&records)?;
        Ok(Volumes {
            records,
            lock: Mutex::new(()),
        })
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.records.join(format!("{name}.json"))
    }

    /// The names of the volumes on `driver`.
    pub fn on_driver(&self, driver: &str) -> Vec<String> {
        self.records().into_iter().filter(|r| r.driver == driver).map(|r| r.name).collect()
    }

    /// The driver of volume `name`, if berthd has it.
    pub fn driver_of(&self, name: &str) -> Option<String> {
        self.record(name).map(|r| r.driver)
    }

    fn record(&self, name: &str) -> Option<Record> {
        if !berth_fs::volume::valid_name(name) {
            return None;
        }
        serde_json::from_slice(&std::fs::read(self.record_path(name)).ok()?).ok()
    }

    fn records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = std::fs::read_dir(&self.records)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").and_then(|n| self.record(n)))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// A volume as the API shows it.
    fn view(&self, registry: &Registry, r: &Record) -> Result<Value, Failure> {
        let driver = registry.volume(&r.driver).map_err(failure)?;
        let v = driver.get(&r.name).map_err(failure)?;
        let mut view = json!({
            "Name": r.name,
            "Driver": r.driver,
            "Mountpoint": v.mountpoint,
            "CreatedAt": r.created_at,
            "Labels": r.labels,
            "Scope": "local",
            "Options": r.options,
        });
        if !v.status.is_empty() {
            view["Status"] = json!(v.status);
        }
        Ok(view)
    }

    pub fn create(&self, registry: &Registry, body: &[u8]) -> Result<(StatusCode, Value), Failure> {
        let body: CreateBody = if body.is_empty() {
            CreateBody::default()
        } else {
            serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("malformed volume create request: {e}")))?
        };
        let name = if body.name.is_empty() { anonymous_name() } else { body.name };
        if !berth_fs::volume::valid_name(&name) {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"),
            ));
        }
        let driver_name = if body.driver.is_empty() { "local".to_string() } else { body.driver };
        let driver = registry
            .volume(&driver_name)
            .map_err(|e| (StatusCode::NOT_FOUND, format!("create {name}: {e}")))?;
        let options = body.driver_opts.unwrap_or_default();
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = self.record(&name) {
            if existing.driver != driver_name {
                return Err((
                    StatusCode::CONFLICT,
                    format!("create {name}: volume name already in use by driver {}", existing.driver),
                ));
            }
            return Ok((StatusCode::CREATED, self.view(registry, &existing)?));
        }
        driver
            .create(&CreateRequest {
                name: name.clone(),
                opts: options.clone(),
            })
            .map_err(|e| (status_of(&e), format!("create {name}: {e}")))?;
        let record = Record {
            name: name.clone(),
            driver: driver_name,
            labels: body.labels.unwrap_or_default(),
            options,
            created_at: now_rfc3339(),
        };
        let json = serde_json::to_vec(&record).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        if let Err(e) = berth_fs::atomic::write(&self.record_path(&name), &json) {
            let _ = driver.remove(&name);
            return Err((StatusCode::INTERNAL_SERVER_ERROR, format!("create {name}: record: {e}")));
        }
        Ok((StatusCode::CREATED, self.view(registry, &record)?))
    }

    pub fn inspect(&self, registry: &Registry, name: &str) -> Result<Value, Failure> {
        let r = self
            .record(name)
            .ok_or((StatusCode::NOT_FOUND, format!("get {name}: no such volume")))?;
        self.view(registry, &r)
    }

    /// `GET /volumes`, with Docker's filters: name (substring), label
    /// (`key` or `key=value`), dangling (used by no container: not in
    /// `in_use`), driver.
    pub fn list(
        &self,
        registry: &Registry,
        filters: &BTreeMap<String, Vec<String>>,
        in_use: &std::collections::BTreeSet<String>,
    ) -> Result<Value, Failure> {
        let mut out = Vec::new();
        for r in self.records() {
            let keep = filters.iter().all(|(key, values)| {
                values.iter().any(|v| match key.as_str() {
                    "name" => r.name.contains(v.as_str()),
                    "driver" => r.driver == *v,
                    "label" => match v.split_once('=') {
                        Some((k, val)) => r.labels.get(k).is_some_and(|x| x == val),
                        None => r.labels.contains_key(v),
                    },
                    "dangling" => (v == "true" || v == "1") != in_use.contains(&r.name),
                    _ => false,
                })
            });
            // One volume its driver lost (a crash between the driver's
            // removal and the record's) must not hide the others.
            if keep {
                match self.view(registry, &r) {
                    Ok(v) => out.push(v),
                    Err((_, e)) => eprintln!("berthd: volume {}: {e}", r.name),
                }
            }
        }
        Ok(json!({ "Volumes": out, "Warnings": [] }))
    }

    pub fn remove(&self, registry: &Registry, name: &str, force: bool) -> Result<(), Failure> {
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(r) = self.record(name) else {
            return if force {
                Ok(())
            } else {
                Err((StatusCode::NOT_FOUND, format!("get {name}: no such volume")))
            };
        };
        let driver = registry.volume(&r.driver).map_err(failure)?;
        match driver.remove(name) {
            Ok(()) => {}
            Err(DriverError::NotFound { .. }) => {}
            Err(e) => return Err((status_of(&e), format!("remove {name}: {e}"))),
        }
        std::fs::remove_file(self.record_path(name)).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("remove {name}: {e}")))
    }

    /// `POST /volumes/prune`: every volume no container uses (API 1.41
    /// prunes named volumes too), with the label filters.
    pub fn prune(
        &self,
        registry: &Registry,
        filters: &BTreeMap<String, Vec<String>>,
        in_use: &std::collections::BTreeSet<String>,
    ) -> Result<Value, Failure> {
        let label_filters: BTreeMap<String, Vec<String>> = filters
            .iter()
            .filter(|(k, _)| k.as_str() == "label")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let listed = self.list(registry, &label_filters, in_use)?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for v in listed["Volumes"].as_array().cloned().unwrap_or_default() {
            let name = v["Name"].as_str().unwrap_or_default().to_string();
            if in_use.contains(&name) {
                continue;
            }
            let size = v["Mountpoint"]
                .as_str()
                .map(|p| super::disk_usage(std::path::Path::new(p)))
                .unwrap_or(0);
            if self.remove(registry, &name, false).is_ok() {
                reclaimed += size;
                deleted.push(name);
            }
        }
        Ok(json!({ "VolumesDeleted": deleted, "SpaceReclaimed": reclaimed }))
    }
}

/// A name for a volume created without one: 64 hex digits, as Docker's.
fn anonymous_name() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
