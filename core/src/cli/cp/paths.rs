//! The path rules of `docker cp` (moby's `pkg/archive/copy.go`): Go's
//! lexical path functions, the meaning of a trailing `/` (the path must
//! be a directory) and `/.` (the directory's contents, not itself), and
//! how a copy decides where to unpack and what the copied root is
//! called there ([`prepare`]).

use std::path::Path;

use super::super::format::go_quote;
use super::super::CliError;

/// docker's `archive.ErrCannotCopyDir`.
pub const CANNOT_COPY_DIR: &str = "cannot copy directory";
/// docker's `archive.ErrDirNotExists`.
pub const DIR_NOT_EXISTS: &str = "no such directory";
/// docker's `archive.ErrNotDirectory`.
pub const NOT_DIRECTORY: &str = "not a directory";

/// What is known of one end of a copy (moby's `archive.CopyInfo`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CopyInfo {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
    /// The name the copied root takes when a symlink was followed to it.
    pub rebase_name: Option<String>,
}

/// Go's `filepath.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Base`.
pub fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's `filepath.Dir`.
pub fn dir(p: &str) -> String {
    match p.rfind('/') {
        Some(i) => clean(&p[..=i]),
        None => ".".into(),
    }
}

/// Go's `filepath.Join` of two parts.
pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean(b),
        (false, true) => clean(a),
        (false, false) => clean(&format!("{a}/{b}")),
    }
}

pub fn has_trailing_separator(p: &str) -> bool {
    p.ends_with('/')
}

/// The path names a directory's contents (`dir/.`).
pub fn specifies_current_dir(p: &str) -> bool {
    base(p) == "."
}

/// The path must be a directory (`dir/` or `dir/.`).
pub fn asserts_directory(p: &str) -> bool {
    has_trailing_separator(p) || specifies_current_dir(p)
}

/// moby's `SplitPathDirEntry`: the directory and the entry in it, `.`
/// kept as the entry of `dir/.`.
pub fn split_dir_entry(p: &str) -> (String, String) {
    let mut cleaned = clean(p);
    if specifies_current_dir(p) {
        cleaned.push_str("/.");
    }
    (dir(&cleaned), base(&cleaned))
}

/// moby's `PreserveTrailingDotOrSeparator`: `cleaned` keeps the `/.` or
/// `/` that `original` ended with.
pub fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if !specifies_current_dir(&out) && specifies_current_dir(original) {
        if !has_trailing_separator(&out) {
            out.push('/');
        }
        out.push('.');
    }
    if !has_trailing_separator(&out) && has_trailing_separator(original) {
        out.push('/');
    }
    out
}

/// moby's `GetRebaseName`: the resolved path with the original's
/// trailing `/.` or `/`, and the original's name when resolving changed
/// it.
pub fn rebase_name(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut resolved = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if has_trailing_separator(path) && !has_trailing_separator(&resolved) {
        resolved.push('/');
    }
    let rebase = (base(path) != base(&resolved)).then(|| base(path));
    (resolved, rebase)
}

/// A path inside a container: relative ones are taken from its root.
pub fn in_container(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// docker's `resolveLocalPath`: absolute, with the trailing `/` or `/.`.
pub fn local_absolute(p: &str) -> Result<String, CliError> {
    let abs = if p.starts_with('/') {
        clean(p)
    } else {
        let cwd = std::env::current_dir().map_err(|e| CliError::Failed(format!("getwd: {e}")))?;
        join(&cwd.to_string_lossy(), p)
    };
    Ok(preserve_trailing(&abs, p))
}

/// A failed system call as Go's `PathError` prints it (`stat /x: not a
/// directory`): the C library's message with a lower-case start.
fn io_error(op: &str, path: &str, e: std::io::Error) -> CliError {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    let message = match chars.next() {
        Some(first) if e.raw_os_error().is_some() => first.to_lowercase().chain(chars).collect(),
        _ => text.to_string(),
    };
    CliError::Failed(format!("{op} {path}: {message}"))
}

/// docker's `ValidateOutputPath`: the directory a local destination is
/// in must exist, and the destination must be a directory or a file.
pub fn validate_output(path: &str) -> Result<(), CliError> {
    let d = dir(&clean(path));
    if d != "." && !Path::new(&d).exists() {
        return Err(CliError::Failed(format!(
            "invalid output path: directory {} does not exist",
            go_quote(&d)
        )));
    }
    let found = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error("stat", path, e)),
        Ok(m) => Some(m),
    };
    if let Some(m) = found {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_block_device() || t.is_char_device() {
            return Err(CliError::Failed(format!(
                "invalid output path: {} must be a directory or a regular file: got a device",
                go_quote(path)
            )));
        }
    }
    Ok(())
}

/// moby's `CopyInfoDestinationPath`: a local destination, its symlinks
/// followed (at most 10); one that does not exist needs its parent.
pub fn local_destination(path: &str) -> Result<CopyInfo, CliError> {
    let mut path = path.to_string();
    let mut meta = std::fs::symlink_metadata(&path);
    let mut followed = 0;
    while let Ok(m) = &meta {
        if !m.file_type().is_symlink() {
            break;
        }
        if followed == 10 {
            return Err(CliError::Failed(format!("too many symlinks in {path}")));
        }
        let target = std::fs::read_link(&path).map_err(|e| io_error("readlink", &path, e))?;
        let target = target.to_string_lossy().into_owned();
        path = if target.starts_with('/') {
            target
        } else {
            join(&split_dir_entry(&path).0, &target)
        };
        meta = std::fs::symlink_metadata(&path);
        followed += 1;
    }
    match meta {
        Ok(m) => Ok(CopyInfo {
            path,
            exists: true,
            is_dir: m.is_dir(),
            rebase_name: None,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = split_dir_entry(&path).0;
            let pm = std::fs::metadata(&parent).map_err(|e| io_error("stat", &parent, e))?;
            if !pm.is_dir() {
                return Err(CliError::Failed(NOT_DIRECTORY.into()));
            }
            Ok(CopyInfo {
                path,
                ..Default::default()
            })
        }
        Err(e) => Err(io_error("lstat", &path, e)),
    }
}

/// moby's `CopyInfoSourcePath`: a local source, the symlink it names
/// followed with `-L` (else only the directories leading to it).
pub fn local_source(path: &str, follow: bool) -> Result<CopyInfo, CliError> {
    let canonical = |p: &str| {
        std::fs::canonicalize(p)
            .map(|c| c.to_string_lossy().into_owned())
            .map_err(|e| io_error("lstat", p, e))
    };
    let (resolved, rebase) = if follow {
        rebase_name(path, &canonical(path)?)
    } else {
        let split = path.rfind('/').map_or(0, |i| i + 1);
        let (dir_part, base_part) = path.split_at(split);
        let resolved_dir = if dir_part.is_empty() { String::new() } else { canonical(dir_part)? };
        let resolved = if resolved_dir.ends_with('/') || resolved_dir.is_empty() {
            format!("{resolved_dir}{base_part}")
        } else {
            format!("{resolved_dir}/{base_part}")
        };
        let rebase = (has_trailing_separator(path) && base(path) != base(&resolved)).then(|| base(path));
        (resolved, rebase)
    };
    let m = std::fs::symlink_metadata(&resolved).map_err(|e| io_error("lstat", &resolved, e))?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: m.is_dir(),
        rebase_name: rebase,
    })
}

/// moby's `PrepareArchiveCopy`: the directory to unpack into, and the
/// name the copied root must have there.
pub fn prepare(src: &CopyInfo, dst: &CopyInfo) -> Result<(String, String), CliError> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let src_base = src.rebase_name.clone().unwrap_or_else(|| split_dir_entry(&src.path).1);
    if dst.exists && dst.is_dir {
        return Ok((dst.path.clone(), src_base));
    }
    if dst.exists && src.is_dir {
        return Err(CliError::Failed(CANNOT_COPY_DIR.into()));
    }
    if !dst.exists && !src.is_dir && asserts_directory(&dst.path) {
        return Err(CliError::Failed(DIR_NOT_EXISTS.into()));
    }
    Ok((dst_dir, dst_base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_functions() {
        assert_eq!(clean("/a/../b/./c/"), "/b/c");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("/.."), "/");
        assert_eq!(clean(""), ".");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/a/."), ".");
        assert_eq!(base("/"), "/");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("a"), ".");
        assert_eq!(join("/a", "../b"), "/b");
        assert_eq!(split_dir_entry("/d/."), ("/d".into(), ".".into()));
        assert_eq!(split_dir_entry("/d/sub/"), ("/d".into(), "sub".into()));
        assert_eq!(preserve_trailing("/x/d", "d/."), "/x/d/.");
        assert_eq!(preserve_trailing("/x/d", "d/"), "/x/d/");
        assert_eq!(preserve_trailing("/", "/."), "/.");
        assert_eq!(rebase_name("/dl/", "/d"), ("/d/".into(), Some("dl".into())));
        assert_eq!(rebase_name("/lnk", "/d/a"), ("/d/a".into(), Some("lnk".into())));
        assert_eq!(rebase_name("/a", "/x/a"), ("/x/a".into(), None));
        assert_eq!(in_container("etc/passwd"), "/etc/passwd");
        let e = io_error("stat", "/x/", std::io::Error::from_raw_os_error(libc::ENOTDIR));
        assert_eq!(e.to_string(), "stat /x/: not a directory");
    }

    #[test]
    fn copies_land_where_dockers_do() {
        let file = CopyInfo {
            path: "/d/a".into(),
            exists: true,
            ..Default::default()
        };
        let dir = CopyInfo {
            path: "/d".into(),
            exists: true,
            is_dir: true,
            ..Default::default()
        };
        let contents = CopyInfo {
            path: "/d/.".into(),
            exists: true,
            is_dir: true,
            ..Default::default()
        };
        let existing_dir = CopyInfo {
            path: "/x/out".into(),
            exists: true,
            is_dir: true,
            ..Default::default()
        };
        let existing_file = CopyInfo {
            path: "/x/f".into(),
            exists: true,
            ..Default::default()
        };
        let new = |p: &str| CopyInfo {
            path: p.into(),
            ..Default::default()
        };
        let ok = |s: &CopyInfo, d: &CopyInfo| prepare(s, d).unwrap();
        assert_eq!(ok(&file, &existing_dir), ("/x/out".into(), "a".into()));
        assert_eq!(ok(&dir, &existing_dir), ("/x/out".into(), "d".into()));
        assert_eq!(ok(&contents, &existing_dir), ("/x/out".into(), ".".into()));
        assert_eq!(ok(&file, &existing_file), ("/x".into(), "f".into()));
        assert_eq!(ok(&dir, &new("/x/n")), ("/x".into(), "n".into()));
        assert_eq!(ok(&contents, &new("/x/n/")), ("/x".into(), "n".into()));
        assert_eq!(ok(&file, &new("/x/n")), ("/x".into(), "n".into()));
        assert_eq!(prepare(&file, &new("/x/n/")).unwrap_err().to_string(), DIR_NOT_EXISTS);
        assert_eq!(prepare(&dir, &existing_file).unwrap_err().to_string(), CANNOT_COPY_DIR);
        let linked = CopyInfo {
            rebase_name: Some("lnk".into()),
            ..file.clone()
        };
        assert_eq!(ok(&linked, &existing_dir), ("/x/out".into(), "lnk".into()));
    }
}
