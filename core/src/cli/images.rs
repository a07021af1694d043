//! The image commands: `images` (docker's table or `--format`), `load`,
//! `save`, `tag`, `history`, `rmi` and `image inspect`.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::api::{encode, filter_query, Api};
use super::format::{self, go_time, human_duration, human_size};
use super::CliError;

/// docker's default `images` table.
const DEFAULT_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// `berth images` and `berth image ls`.
#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub list: format::ListArgs,
    /// Show all images (berth keeps no intermediate images).
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Only images of this name (REPOSITORY[:TAG]).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// The image subcommands of `berth image`.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Display detailed information on one or more images.
    Inspect(NamesArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images.
    #[command(alias = "remove")]
    Rm(RmiArgs),
}

/// Commands that take image names.
#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "IMAGE")]
    pub names: Vec<String>,
}

/// `berth rmi`.
#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image.
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub names: Vec<String>,
}

/// `berth load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The archive (what `docker save` or `berth save` wrote).
    #[arg(short = 'i', long = "input")]
    pub input: std::path::PathBuf,
    /// Print only the image names.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// `berth save`.
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Where to write it (standard output if left out).
    #[arg(short = 'o', long = "output")]
    pub output: Option<std::path::PathBuf>,
    #[arg(required = true, value_name = "IMAGE")]
    pub names: Vec<String>,
}

/// Column titles of docker's image fields.
fn headers() -> Value {
    json!({
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
        "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
    })
}

/// docker's image rows of one entry of `GET /images/json`: one per tag.
fn rows(i: &Value, trunc: bool, now: i64) -> Vec<Value> {
    let id = i["Id"].as_str().unwrap_or_default();
    let id = if trunc {
        let hex = id.trim_start_matches("sha256:");
        hex[..hex.len().min(12)].to_string()
    } else {
        id.to_string()
    };
    let created = i["Created"].as_i64().unwrap_or(0);
    let size = human_size(i["Size"].as_f64().unwrap_or(0.0), 3);
    let mut tags: Vec<(String, String)> = i["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|t| *t != "<none>:<none>")
        .map(|t| match t.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
            Some((r, tag)) => (r.to_string(), tag.to_string()),
            None => (t.to_string(), "<none>".to_string()),
        })
        .collect();
    if tags.is_empty() {
        tags.push(("<none>".into(), "<none>".into()));
    }
    tags.into_iter()
        .map(|(repo, tag)| {
            json!({
                "ID": id, "Repository": repo, "Tag": tag, "Digest": "<none>",
                "CreatedSince": format!("{} ago", human_duration(now - created)), "CreatedAt": go_time(created),
                "Size": size, "VirtualSize": size, "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A",
            })
        })
        .collect()
}

/// `berth images`.
pub fn images(api: &Api, a: ImagesArgs) -> Result<(), CliError> {
    let mut filters = a.list.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let v = api.get(&format!("/images/json{}", filter_query(&filters)?))?;
    let now = crate::time::now_secs();
    let rows: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| rows(i, !a.list.no_trunc, now))
        .collect();
    a.list.print(&rows, DEFAULT_TABLE, &headers())
}

/// `berth rmi`.
pub fn rmi(api: &Api, a: RmiArgs) -> Result<(), CliError> {
    let mut failed = false;
    let q = if a.force { "?force=1" } else { "" };
    for n in &a.names {
        match api.call("DELETE", &format!("/images/{}{q}", encode(n)), None) {
            Ok(v) => {
                for e in v.and_then(|v| v.as_array().cloned()).unwrap_or_default() {
                    if let Some(t) = e["Untagged"].as_str() {
                        println!("Untagged: {t}");
                    }
                    if let Some(t) = e["Deleted"].as_str() {
                        println!("Deleted: {t}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(CliError::Exit(1));
    }
    Ok(())
}

/// `berth load`.
pub fn load(api: &Api, a: LoadArgs) -> Result<(), CliError> {
    let data = std::fs::read(&a.input).map_err(|e| CliError::Failed(format!("open {}: {e}", a.input.display())))?;
    let mut progress = super::progress::Progress::new("Loading", Some(data.len() as u64), a.quiet);
    let body = api.raw_with_progress(
        "POST",
        &format!("/images/load?quiet={}", u8::from(a.quiet)),
        Some(&data),
        &mut |n| progress.update(n),
    )?;
    progress.finish();
    for line in String::from_utf8_lossy(&body).lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_default();
        if let Some(s) = v["stream"].as_str() {
            print!("{s}");
        }
        if let Some(e) = v["error"].as_str() {
            return Err(CliError::Failed(e.to_string()));
        }
    }
    Ok(())
}

/// `berth save`.
pub fn save(api: &Api, a: SaveArgs) -> Result<(), CliError> {
    let q: Vec<String> = a.names.iter().map(|n| format!("names={}", encode(n))).collect();
    let mut answer = api.open("GET", &format!("/images/get?{}", q.join("&")))?;
    // Progress only when the tarball goes to a file, not to a pipe.
    let mut progress = super::progress::Progress::new("Saving", None, a.output.is_none());
    let mut tar = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = std::io::Read::read(&mut answer, &mut buf).map_err(|e| CliError::Failed(format!("reading the image archive: {e}")))?;
        if n == 0 {
            break;
        }
        tar.extend_from_slice(&buf[..n]);
        progress.update(tar.len() as u64);
    }
    progress.finish();
    match a.output {
        Some(path) => berth_fs::atomic::write(&path, &tar).map_err(|e| CliError::Failed(format!("{}: {e}", path.display()))),
        None => std::io::Write::write_all(&mut std::io::stdout(), &tar).map_err(|e| CliError::Failed(e.to_string())),
    }
}

/// `berth tag SOURCE TARGET`.
pub fn tag(api: &Api, source: &str, target: &str) -> Result<(), CliError> {
    let (repo, tag) = match target.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((r, t)) => (r, t),
        None => (target, "latest"),
    };
    api.post(&format!("/images/{}/tag?repo={}&tag={}", encode(source), encode(repo), encode(tag)))?;
    Ok(())
}

/// `berth history IMAGE`.
pub fn history(api: &Api, name: &str) -> Result<(), CliError> {
    let v = api.get(&format!("/images/{}/history", encode(name)))?;
    println!("{:<14} {:<12} CREATED BY", "IMAGE", "SIZE");
    for h in v.as_array().into_iter().flatten() {
        let id = h["Id"].as_str().unwrap_or("").trim_start_matches("sha256:");
        println!(
            "{:<14} {:<12} {}",
            &id[..id.len().min(12)],
            format!("{:.1}MB", h["Size"].as_f64().unwrap_or(0.0) / 1e6),
            h["CreatedBy"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_rows_read_as_dockers() {
        let i = json!({"Id": "sha256:5623a483baef89ca7dc207f7513d67fbe45f514d5cc2ee7536c00b6350561b69",
            "RepoTags": ["busybox:latest", "localhost:5000/team/app:v2"], "Created": 1_795_446_668, "Size": 2_140_160});
        let r = rows(&i, true, 1_795_446_908);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[1]["Repository"].as_str(), r[1]["Tag"].as_str()),
            (Some("localhost:5000/team/app"), Some("v2"))
        );
        let out = format::render(None, DEFAULT_TABLE, &r[..1], &headers()).unwrap();
        assert_eq!(
            out,
            "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\nbusybox      latest    5623a483baef   4 minutes ago   2.14MB\n"
        );
        let none = rows(&json!({"Id": "sha256:ab", "RepoTags": []}), false, 0);
        assert_eq!(
            (none[0]["Repository"].as_str(), none[0]["ID"].as_str()),
            (Some("<none>"), Some("sha256:ab"))
        );
    }
}
