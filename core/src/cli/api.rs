//! The CLI's view of berthd's Engine API: versioned paths, JSON in and
//! out, and a refusal turned into [`CliError::Daemon`] with the daemon's
//! message. The HTTP itself is [`crate::client`]'s.

use std::path::PathBuf;

use serde_json::Value;

use super::CliError;
use crate::client::{self, Hijacked, Streamed};
use crate::daemon::api::API_VERSION;

/// berthd at a socket.
pub struct Api {
    socket: PathBuf,
}

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Docker's `filters` query parameter from KEY=VALUE flags, with its
/// leading `?` (empty when there are none).
pub fn filter_query(list: &[String]) -> Result<String, CliError> {
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in list {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("invalid filter {f:?}: expected KEY=VALUE")))?;
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    if m.is_empty() {
        return Ok(String::new());
    }
    let json = serde_json::to_string(&m).map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(format!("?filters={}", encode(&json)))
}

/// The daemon's refusal: the `message` of its JSON, else the text.
fn refusal(status: u16, body: &[u8]) -> CliError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body).trim().to_string();
            if text.is_empty() {
                format!("status {status}")
            } else {
                text
            }
        });
    CliError::Daemon { status, message }
}

impl Api {
    pub fn new(socket: PathBuf) -> Api {
        Api { socket }
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// `route` (`/containers/json`) under the API version we speak.
    pub fn path(route: &str) -> String {
        format!("/v{API_VERSION}{route}")
    }

    /// Sends a request; the JSON answer, `None` for an empty one.
    pub fn call(&self, method: &str, route: &str, body: Option<&Value>) -> Result<Option<Value>, CliError> {
        let body = body.map(|b| b.to_string());
        let a = client::request(&self.socket, method, &Self::path(route), body.as_deref().map(str::as_bytes))?;
        if a.status >= 400 {
            return Err(refusal(a.status, &a.body));
        }
        if a.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&a.body)
            .map(Some)
            .map_err(|e| CliError::Failed(format!("berthd answered {route} with something other than JSON: {e}")))
    }

    /// `GET route`, its JSON (null for an empty answer).
    pub fn get(&self, route: &str) -> Result<Value, CliError> {
        Ok(self.call("GET", route, None)?.unwrap_or_default())
    }

    /// `POST route` without a body.
    pub fn post(&self, route: &str) -> Result<Option<Value>, CliError> {
        self.call("POST", route, None)
    }

    /// Sends raw bytes; the raw answer, refused when the status says so.
    pub fn raw(&self, method: &str, route: &str, body: Option<&[u8]>) -> Result<Vec<u8>, CliError> {
        let a = client::request(&self.socket, method, &Self::path(route), body)?;
        if a.status >= 400 {
            return Err(refusal(a.status, &a.body));
        }
        Ok(a.body)
    }

    /// [`Api::raw`], telling `sent` how much of the body has gone.
    pub fn raw_with_progress(
        &self,
        method: &str,
        route: &str,
        body: Option<&[u8]>,
        sent: &mut dyn FnMut(u64),
    ) -> Result<Vec<u8>, CliError> {
        let mut s = client::open_with_progress(&self.socket, method, &Self::path(route), body, sent)?;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut out).map_err(|e| CliError::Failed(format!("reading berthd's answer: {e}")))?;
        if s.status >= 400 {
            return Err(refusal(s.status, &out));
        }
        Ok(out)
    }

    /// Sends a request and returns as soon as the answer's head came; the
    /// body is read from the result.
    pub fn open(&self, method: &str, route: &str) -> Result<Streamed, CliError> {
        let mut s = client::open(&self.socket, method, &Self::path(route), None)?;
        if s.status >= 400 {
            let mut body = Vec::new();
            let _ = std::io::Read::read_to_end(&mut s, &mut body);
            return Err(refusal(s.status, &body));
        }
        Ok(s)
    }

    /// `POST route` upgraded to a raw connection (attach).
    pub fn upgrade(&self, route: &str) -> Result<Hijacked, CliError> {
        client::upgrade(&self.socket, "POST", &Self::path(route))?.map_err(|a| refusal(a.status, &a.body))
    }

    /// `POST route` with a JSON body, upgraded to a raw connection (exec
    /// start).
    pub fn upgrade_with(&self, route: &str, body: &Value) -> Result<Hijacked, CliError> {
        let body = body.to_string();
        client::upgrade_with(&self.socket, "POST", &Self::path(route), Some(body.as_bytes()))?.map_err(|a| refusal(a.status, &a.body))
    }

    /// `HEAD route`: the answer's headers, refused when the status says so
    /// (a HEAD answer has no body to carry the daemon's message).
    pub fn head(&self, route: &str) -> Result<Streamed, CliError> {
        let s = client::open(&self.socket, "HEAD", &Self::path(route), None)?;
        if s.status >= 400 {
            return Err(CliError::Daemon {
                status: s.status,
                message: format!("status {}", s.status),
            });
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_refusals_read_as_docker() {
        assert_eq!(filter_query(&[]).unwrap(), "");
        assert_eq!(
            filter_query(&["status=exited".into(), "status=created".into()]).unwrap(),
            format!("?filters={}", encode(r#"{"status":["exited","created"]}"#))
        );
        assert!(matches!(filter_query(&["nope".into()]), Err(CliError::Usage(_))));
        let e = refusal(404, br#"{"message":"No such container: x"}"#);
        assert_eq!(e.to_string(), "Error response from daemon: No such container: x");
        assert_eq!(refusal(500, b"").to_string(), "Error response from daemon: status 500");
    }
}
