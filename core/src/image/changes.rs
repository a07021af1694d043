//! `docker import --change`: Dockerfile instructions that set an image's
//! configuration (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME,
//! WORKDIR, STOPSIGNAL), as Docker accepts them there.

use serde_json::{json, Map, Value};

/// A Dockerfile argument list: a JSON array (exec form) or the shell form.
fn exec_or_shell(arg: &str) -> Value {
    match serde_json::from_str::<Vec<String>>(arg) {
        Ok(v) => json!(v),
        Err(_) => json!(["/bin/sh", "-c", arg]),
    }
}

/// `k=v k2="v 2"` or the old `k v` form, as pairs.
fn pairs(arg: &str) -> Result<Vec<(String, String)>, String> {
    if !arg.contains('=') {
        return match arg.split_once(char::is_whitespace) {
            Some((k, v)) => Ok(vec![(k.to_string(), v.trim().to_string())]),
            None => Err(format!("{arg:?} needs a value")),
        };
    }
    let mut out = Vec::new();
    let mut rest = arg.trim();
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=').ok_or_else(|| format!("{rest:?} is not key=value"))?;
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').ok_or_else(|| format!("unterminated quote in {arg:?}"))?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((k.trim().to_string(), v));
        rest = next.trim_start();
    }
    Ok(out)
}

fn object(v: &mut Value, key: &str) -> Map<String, Value> {
    v[key].as_object().cloned().unwrap_or_default()
}

/// Applies `changes` to the `config` object of an image configuration.
pub fn apply(config: &mut Value, changes: &[String]) -> Result<(), String> {
    for change in changes.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        let (word, arg) = change.split_once(char::is_whitespace).unwrap_or((change, ""));
        let arg = arg.trim();
        match word.to_ascii_uppercase().as_str() {
            "CMD" => config["Cmd"] = exec_or_shell(arg),
            "ENTRYPOINT" => config["Entrypoint"] = exec_or_shell(arg),
            "WORKDIR" => config["WorkingDir"] = json!(arg),
            "USER" => config["User"] = json!(arg),
            "STOPSIGNAL" => config["StopSignal"] = json!(arg),
            "ENV" => {
                let mut env: Vec<String> = config["Env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect();
                for (k, v) in pairs(arg)? {
                    env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                config["Env"] = json!(env);
            }
            "LABEL" => {
                let mut labels = object(config, "Labels");
                for (k, v) in pairs(arg)? {
                    labels.insert(k, json!(v));
                }
                config["Labels"] = Value::Object(labels);
            }
            "EXPOSE" => {
                let mut ports = object(config, "ExposedPorts");
                for p in arg.split_whitespace() {
                    let p = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                    ports.insert(p, json!({}));
                }
                config["ExposedPorts"] = Value::Object(ports);
            }
            "VOLUME" => {
                let mut volumes = object(config, "Volumes");
                let paths: Vec<String> = serde_json::from_str(arg).unwrap_or_else(|_| arg.split_whitespace().map(str::to_string).collect());
                for p in paths {
                    volumes.insert(p, json!({}));
                }
                config["Volumes"] = Value::Object(volumes);
            }
            other => {
                return Err(format!(
                    "{other} is not a valid change command (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)"
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_set_the_configuration() {
        let mut c = json!({});
        let changes: Vec<String> = [
            "CMD [\"sh\", \"-c\", \"echo hi\"]",
            "ENTRYPOINT /bin/run",
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "EXPOSE 80 53/udp",
            "VOLUME /data /logs",
            "VOLUME [\"/cache\"]",
            "LABEL team=core",
            "WORKDIR /srv",
            "USER 1000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        apply(&mut c, &changes).unwrap();
        assert_eq!(c["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/run"]));
        assert_eq!(c["Env"], json!(["B=two words", "A=3"]));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}, "/cache": {}}));
        assert_eq!(c["Labels"], json!({"team": "core"}));
        assert_eq!((c["WorkingDir"].as_str(), c["User"].as_str()), (Some("/srv"), Some("1000")));
        assert!(apply(&mut c, &["RUN make".into()]).unwrap_err().contains("RUN"));
        assert!(apply(&mut c, &["ENV A=\"open".into()]).unwrap_err().contains("quote"));
    }
}
