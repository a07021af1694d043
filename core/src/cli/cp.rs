//! `berth cp`: files between a container and us, either way, as docker's
//! CLI copies them. Out of a container: its tarball of the path
//! (`GET /containers/{id}/archive?path=`, whose
//! `X-Docker-Container-Path-Stat` header says what the path is) unpacked
//! here, or written to stdout for `-`. Into a container: our tarball (or
//! stdin's, for `-`) sent to a directory of it (`PUT`). Where a copy
//! lands and what it is called follows docker's rules ([`paths`]).

mod paths;
mod tarball;

use std::io::Read;
use std::path::Path;

use clap::Args;
use serde_json::Value;

use super::api::{encode, Api};
use super::format::human_size;
use super::CliError;
use paths::CopyInfo;

/// Go's `os.ModeDir` in the path stat's mode.
const MODE_DIR: u64 = 1 << 31;
/// Go's `os.ModeSymlink`.
const MODE_SYMLINK: u64 = 1 << 27;
/// Go's `os.ModeDevice`.
const MODE_DEVICE: u64 = 1 << 26;
/// Go's `os.ModeIrregular`.
const MODE_IRREGULAR: u64 = 1 << 19;

/// The header carrying a container path's stat (moby's API).
const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// `berth cp`.
#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy (always when stdout is not a terminal).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, a local path, or - for a tarball on stdin.
    #[arg(value_name = "SRC_PATH")]
    pub source: String,
    /// CONTAINER:DEST_PATH, a local path, or - for a tarball on stdout.
    #[arg(value_name = "DEST_PATH")]
    pub destination: String,
}

/// docker's `splitCpArg`: `CONTAINER:PATH`, or a local path (absolute,
/// without a colon, or starting with `.`).
fn split_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

/// Standard base64 (with padding), as the path stat header is encoded.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim().trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// What a container path is (moby's `container.PathStat`).
#[derive(Debug, Default)]
struct PathStat {
    mode: u64,
    link_target: String,
}

impl PathStat {
    fn of(header: Option<&str>) -> Result<PathStat, CliError> {
        let bad = || CliError::Failed(format!("berthd sent an unreadable {PATH_STAT_HEADER} header"));
        let json = base64_decode(header.ok_or_else(bad)?).ok_or_else(bad)?;
        let v: Value = serde_json::from_slice(&json).map_err(|_| bad())?;
        Ok(PathStat {
            mode: v["mode"].as_u64().unwrap_or(0),
            link_target: v["linkTarget"].as_str().unwrap_or_default().to_string(),
        })
    }

    fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }

    fn is_symlink(&self) -> bool {
        self.mode & MODE_SYMLINK != 0
    }
}

/// `HEAD /containers/{id}/archive?path=`: what the path is.
fn stat(api: &Api, container: &str, path: &str) -> Result<PathStat, CliError> {
    let s = api.head(&format!("/containers/{}/archive?path={}", encode(container), encode(path)))?;
    PathStat::of(s.header(PATH_STAT_HEADER))
}

/// Where a symlink at `path` with `target` points, from its directory.
fn link_destination(path: &str, target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        paths::join(&paths::split_dir_entry(path).0, target)
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// `berth cp`.
pub fn cp(api: &Api, a: CpArgs) -> Result<(), CliError> {
    let (from, src) = split_arg(&a.source);
    let (to, dst) = split_arg(&a.destination);
    // docker is quiet when its output is not a terminal.
    let quiet = a.quiet || !super::terminal::stdout_is_terminal();
    match (from, to) {
        (Some(c), None) => from_container(api, c, &paths::in_container(src), dst, a.follow_link, quiet),
        (None, Some(c)) => to_container(api, c, src, &paths::in_container(dst), &a, quiet),
        (Some(_), Some(_)) => Err(CliError::Failed("copying between containers is not supported".into())),
        (None, None) => Err(CliError::Failed("must specify at least one container source".into())),
    }
}

/// docker's `copyFromContainer`.
fn from_container(api: &Api, container: &str, src: &str, dst: &str, follow: bool, quiet: bool) -> Result<(), CliError> {
    let dst = if dst == "-" { dst.to_string() } else { paths::local_absolute(dst)? };
    paths::validate_output(&dst)?;
    let mut src = src.to_string();
    let mut rebase = None;
    if follow {
        if let Some(s) = stat(api, container, &src).ok().filter(|s| s.is_symlink()) {
            let (resolved, name) = paths::rebase_name(&src, &link_destination(&src, &s.link_target));
            (src, rebase) = (resolved, name);
        }
    }
    let answer = api.open("GET", &format!("/containers/{}/archive?path={}", encode(container), encode(&src)))?;
    if dst == "-" {
        let mut body = answer;
        return match std::io::copy(&mut body, &mut std::io::stdout().lock()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Failed(e.to_string())),
            _ => Ok(()),
        };
    }
    let stat = PathStat::of(answer.header(PATH_STAT_HEADER))?;
    let source = CopyInfo {
        path: src.clone(),
        exists: true,
        is_dir: stat.is_dir(),
        rebase_name: rebase,
    };
    let target = paths::local_destination(&dst)?;
    let (dir, root) = paths::prepare(&source, &target)?;
    let rename = tarball::Rename {
        contents: paths::specifies_current_dir(&src),
        root,
    };
    let mut body = Counted { inner: answer, count: 0 };
    tarball::unpack(&mut body, Path::new(&dir), &rename)?;
    // The rest of the stream (the tarball's padding) counts too.
    let _ = std::io::copy(&mut body, &mut std::io::sink());
    if !quiet {
        eprintln!("Successfully copied {} to {dst}", human_size(body.count as f64, 3));
    }
    Ok(())
}

/// docker's `copyToContainer`.
fn to_container(api: &Api, container: &str, src: &str, dst: &str, a: &CpArgs, quiet: bool) -> Result<(), CliError> {
    let src = if src == "-" { src.to_string() } else { paths::local_absolute(src)? };
    let mut target = CopyInfo {
        path: dst.to_string(),
        ..Default::default()
    };
    let mut found = stat(api, container, dst);
    if let Some(s) = found.as_ref().ok().filter(|s| s.is_symlink()) {
        target.path = link_destination(dst, &s.link_target);
        found = stat(api, container, &target.path);
    }
    if let Ok(s) = &found {
        let problem = if s.mode & MODE_DEVICE != 0 {
            Some("got a device")
        } else if s.mode & MODE_IRREGULAR != 0 {
            Some("got an irregular file")
        } else {
            None
        };
        if let Some(p) = problem {
            return Err(CliError::Failed(format!(
                "destination \"{container}:{dst}\" must be a directory or a regular file: {p}"
            )));
        }
        target.exists = true;
        target.is_dir = s.is_dir();
    }
    let (dir, tar) = if src == "-" {
        if !target.is_dir {
            return Err(CliError::Failed(format!("destination \"{container}:{dst}\" must be a directory")));
        }
        let mut tar = Vec::new();
        std::io::stdin()
            .read_to_end(&mut tar)
            .map_err(|e| CliError::Failed(format!("reading the tarball on stdin: {e}")))?;
        (target.path.clone(), tar)
    } else {
        let source = paths::local_source(&src, a.follow_link)?;
        let (dir, root) = paths::prepare(&source, &target)?;
        (dir, tarball::pack(&source.path, &root)?)
    };
    api.raw(
        "PUT",
        &format!(
            "/containers/{}/archive?path={}&noOverwriteDirNonDir=true&copyUIDGID={}",
            encode(container),
            encode(&dir),
            a.archive
        ),
        Some(&tar),
    )?;
    if !quiet {
        // docker counts only the tarballs it makes: stdin's is "0B".
        let copied = if src == "-" { 0 } else { tar.len() };
        eprintln!(
            "Successfully copied {} to {container}:{}",
            human_size(copied as f64, 3),
            target.path
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_as_dockers() {
        assert_eq!(split_arg("c1:/etc/passwd"), (Some("c1"), "/etc/passwd"));
        assert_eq!(split_arg("/abs:path"), (None, "/abs:path"));
        assert_eq!(split_arg("./file:name"), (None, "./file:name"));
        assert_eq!(split_arg("local"), (None, "local"));
        assert_eq!(split_arg("-"), (None, "-"));
        assert_eq!(split_arg("c1:"), (Some("c1"), ""));
    }

    #[test]
    fn path_stats_decode() {
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert!(base64_decode("Z").is_none());
        let s = PathStat::of(Some(
            "eyJsaW5rVGFyZ2V0IjoiYSIsIm1vZGUiOjEzNDIxODIzOSwibXRpbWUiOiIyMDI2LTExLTIzVDE1OjUzOjI1WiIsIm5hbWUiOiJsbmsiLCJzaXplIjoxfQ==",
        ))
        .unwrap();
        assert!(s.is_symlink() && !s.is_dir());
        assert_eq!(s.link_target, "a");
        assert!(PathStat::of(None).is_err());
    }
}
