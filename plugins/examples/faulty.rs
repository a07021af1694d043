//! faulty: a volume plugin that misbehaves on request, to show the engine
//! surviving its plugins. Creating a volume named `panic` panics, `hang`
//! never answers, `garbage` answers malformed JSON; any other name works
//! (kept in memory).

use std::collections::BTreeSet;
use std::sync::Mutex;

use berth_plugin::abi::Plugin;
use serde_json::{json, Value};

#[derive(Default)]
struct Faulty {
    volumes: Mutex<BTreeSet<String>>,
}

impl Plugin for Faulty {
    fn name(&self) -> &'static str {
        "faulty"
    }

    fn interfaces(&self) -> Vec<&'static str> {
        vec!["VolumeDriver"]
    }

    fn call(&self, method: &str, request: &[u8]) -> Vec<u8> {
        let req: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
        let name = req["Name"].as_str().unwrap_or_default().to_string();
        let mut volumes = self.volumes.lock().unwrap_or_else(|p| p.into_inner());
        let answer = match method {
            "/Plugin.Activate" => json!({ "Implements": ["VolumeDriver"] }),
            "/VolumeDriver.Create" => match name.as_str() {
                "panic" => panic!("asked to panic"),
                "hang" => {
                    drop(volumes);
                    loop {
                        std::thread::park();
                    }
                }
                "garbage" => return b"{\"Err\": \"\", oops".to_vec(),
                _ => {
                    volumes.insert(name);
                    json!({})
                }
            },
            "/VolumeDriver.List" => json!({ "Volumes": volumes.iter().map(|v| json!({ "Name": v })).collect::<Vec<_>>() }),
            "/VolumeDriver.Get" if volumes.contains(&name) => json!({ "Volume": { "Name": name } }),
            "/VolumeDriver.Remove" if volumes.remove(&name) => json!({}),
            "/VolumeDriver.Capabilities" => json!({ "Capabilities": { "Scope": "local" } }),
            _ => json!({ "Err": format!("{method}: no volume {name:?}") }),
        };
        answer.to_string().into_bytes()
    }
}

berth_plugin::export_plugin!(Faulty::default());
