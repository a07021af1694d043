//! `berth port`: a container's published ports, from its
//! `NetworkSettings.Ports`, as docker prints them (none until berthd has
//! networks that publish ports).

use clap::Args;
use serde_json::Value;

use super::api::{encode, Api};
use super::CliError;

/// `berth port`.
#[derive(Args, Debug)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

/// Go's `net.JoinHostPort`: an IPv6 address in brackets.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The host sides of one binding list.
fn frontends(bindings: &Value) -> Vec<String> {
    bindings
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| join_host_port(b["HostIp"].as_str().unwrap_or_default(), b["HostPort"].as_str().unwrap_or_default()))
        .collect()
}

/// The lines docker prints for `ports` (a `NetworkSettings.Ports`),
/// limited to `port` when given.
fn lines(ports: &Value, container: &str, port: Option<&str>) -> Result<Vec<String>, CliError> {
    let mut out = match port {
        Some(p) => {
            let (number, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            if number.parse::<u16>().is_err() {
                return Err(CliError::Failed(format!(
                    "Error: invalid port ({number}): strconv.ParseUint: parsing {number:?}: invalid syntax"
                )));
            }
            let found = frontends(&ports[format!("{number}/{proto}")]);
            if found.is_empty() {
                return Err(CliError::Failed(format!("Error: No public port '{p}' published for {container}")));
            }
            found
        }
        None => ports
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(from, b)| frontends(b).into_iter().map(move |f| format!("{from} -> {f}")))
            .collect(),
    };
    out.sort();
    Ok(out)
}

/// `berth port`.
pub fn port(api: &Api, a: PortArgs) -> Result<(), CliError> {
    let v = api.get(&format!("/containers/{}/json", encode(&a.container)))?;
    for l in lines(&v["NetworkSettings"]["Ports"], &a.container, a.port.as_deref())? {
        println!("{l}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_print_as_dockers() {
        let ports = json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "53/udp": null,
        });
        assert_eq!(
            lines(&ports, "web", None).unwrap(),
            ["80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"]
        );
        assert_eq!(lines(&ports, "web", Some("80")).unwrap(), ["0.0.0.0:8080", "[::]:8080"]);
        let e = lines(&ports, "web", Some("53/udp")).unwrap_err();
        assert_eq!(e.to_string(), "Error: No public port '53/udp' published for web");
        assert!(lines(&Value::Null, "web", None).unwrap().is_empty());
    }
}
