//! `berth inspect` (and `container inspect`): objects as berthd shows
//! them, a JSON array indented as docker's, or one `-f` template line per
//! object. A name is looked up as a container, then as an image, then as
//! a volume, unless `--type` says which.

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::api::{encode, Api};
use super::format::pretty;
use super::template::Template;
use super::CliError;

/// What `--type` may name.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Kind {
    Container,
    Image,
    Volume,
    Network,
    Plugin,
}

/// `berth inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template ('json', or a Go template).
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Return JSON for specified type.
    #[arg(long = "type", value_enum)]
    pub kind: Option<Kind>,
    /// Display total file sizes if the type is container.
    #[arg(short = 's', long = "size")]
    pub size: bool,
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

fn route(kind: Kind, name: &str, size: bool) -> String {
    let name = encode(name);
    match kind {
        Kind::Container => format!("/containers/{name}/json{}", if size { "?size=1" } else { "" }),
        Kind::Image => format!("/images/{name}/json"),
        Kind::Volume => format!("/volumes/{name}"),
        Kind::Network => format!("/networks/{name}"),
        Kind::Plugin => format!("/plugins/{name}/json"),
    }
}

/// One object: of `kind`, else the first kind that has `name`.
fn lookup(api: &Api, name: &str, kind: Option<Kind>, size: bool) -> Result<Value, CliError> {
    if let Some(k) = kind {
        return api.get(&route(k, name, size));
    }
    for k in [Kind::Container, Kind::Image, Kind::Volume, Kind::Network, Kind::Plugin] {
        match api.get(&route(k, name, size)) {
            Err(CliError::Daemon { status: 404, .. }) => continue,
            other => return other,
        }
    }
    Err(CliError::Failed(format!("Error: No such object: {name}")))
}

/// `network inspect`, `plugin inspect` and their kin: `names` of one kind.
pub fn inspect_of(api: &Api, kind: Kind, format: Option<String>, names: Vec<String>) -> Result<(), CliError> {
    let args = InspectArgs {
        format,
        kind: None,
        size: false,
        names,
    };
    inspect(api, args, Some(kind))
}

/// `berth inspect`; `only` for `container inspect` and its kin.
pub fn inspect(api: &Api, a: InspectArgs, only: Option<Kind>) -> Result<(), CliError> {
    let template = match a.format.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")),
        Some(f) => Some(Template::parse(f)),
    }
    .transpose()
    .map_err(|e| CliError::Failed(e.to_string()))?;
    let mut found = Vec::new();
    // docker prints what it found, then what it did not.
    let mut errors = Vec::new();
    for n in &a.names {
        let v = match lookup(api, n, only.or(a.kind), a.size) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        match &template {
            None => found.push(v),
            Some(t) => match t.render(&v) {
                Ok(line) => println!("{line}"),
                Err(e) => errors.push(e.to_string()),
            },
        }
    }
    if template.is_none() {
        println!("{}", pretty(&Value::Array(found)));
    }
    for e in &errors {
        eprintln!("{e}");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Exit(1))
    }
}
