//! Reading and writing cgroupfs control files, and making and removing
//! cgroup directories. Every error names the file or directory; callers know
//! nothing of `std::fs`.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CgroupError;

/// How long freezing (and thawing) may take before we give up.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Delays between attempts to remove a busy cgroup: the last processes of a
/// killed container take a moment to leave. About 1.3 s in all.
const RMDIR_BACKOFF: [Duration; 7] = [
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
    Duration::from_millis(160),
    Duration::from_millis(320),
    Duration::from_millis(640),
];

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `value` to the control file `path` in one write(2), as cgroupfs
/// wants.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
        })
}

/// Reads the control file `path`.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(io_error("read", path))
}

/// The number after `key` in a flat keyed file (`oom_kill 3`, `frozen 1`).
pub(crate) fn keyed_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(key)).then(|| words.next()?.parse().ok())?
    })
}

/// Makes the directories of cgroup `relative` below `mount_point`, pushing
/// each one this call created onto `created` (outermost first). Returns the
/// cgroup's directory.
pub(crate) fn make_dirs(mount_point: &Path, relative: &Path, created: &mut Vec<PathBuf>) -> Result<PathBuf, CgroupError> {
    let mut dir = mount_point.to_path_buf();
    for component in relative.components() {
        dir.push(component);
        match std::fs::create_dir(&dir) {
            Ok(()) => created.push(dir.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(io_error("mkdir", &dir)(source)),
        }
    }
    Ok(dir)
}

/// Removes the directories `make_dirs` created, innermost first. Used after a
/// failed create, when no process can be inside yet; errors are ignored
/// because the create's own error is the one to report.
pub(crate) fn remove_created(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Removes cgroup `dir` and its child cgroups, deepest first. A directory
/// that does not exist is already removed; a busy one is retried while its
/// last processes exit.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    for child in child_cgroups(dir)? {
        remove_tree(&child)?;
    }
    let mut backoff = RMDIR_BACKOFF.iter();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => match backoff.next() {
                Some(delay) => std::thread::sleep(*delay),
                None => return Err(io_error("rmdir", dir)(e)),
            },
            Err(e) => return Err(io_error("rmdir", dir)(e)),
        }
    }
}

/// The child cgroups of `dir` (its subdirectories); none if `dir` is gone.
fn child_cgroups(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list", dir)(e)),
    };
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error("list", dir))?;
        let is_dir = entry.file_type().map_err(io_error("stat", &entry.path()))?.is_dir();
        if is_dir {
            children.push(entry.path());
        }
    }
    Ok(children)
}

/// The processes in cgroup `dir` and its descendants, from `cgroup.procs`.
pub(crate) fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let file = dir.join("cgroup.procs");
    let content = read(&file)?;
    let mut pids = Vec::new();
    for line in content.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let pid = line.parse().map_err(|_| CgroupError::Parse {
            path: file.clone(),
            content: line.to_string(),
        })?;
        pids.push(pid);
    }
    for child in child_cgroups(dir)? {
        pids.extend(procs(&child)?);
    }
    Ok(pids)
}

/// Calls `attempt` until it reports done, backing off from 1 ms to 16 ms
/// between calls; after [`SETTLE_TIMEOUT`] fails with the state `attempt`
/// last saw in `path`.
pub(crate) fn wait_until(
    op: &'static str,
    path: &Path,
    mut attempt: impl FnMut() -> Result<(bool, String), CgroupError>,
) -> Result<(), CgroupError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        let (done, state) = attempt()?;
        if done {
            return Ok(());
        }
        if start.elapsed() >= SETTLE_TIMEOUT {
            return Err(CgroupError::Timeout {
                op,
                path: path.to_path_buf(),
                state,
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(16));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_values_match_whole_keys() {
        let oom_control = "oom_kill_disable 1\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(oom_control, "oom_kill"), Some(3));
        assert_eq!(keyed_value(oom_control, "oom_kill_disable"), Some(1));
        assert_eq!(keyed_value(oom_control, "oom"), None);
        assert_eq!(keyed_value("populated 1\nfrozen 0\n", "frozen"), Some(0));
        assert_eq!(keyed_value("frozen x\n", "frozen"), None);
    }

    #[test]
    fn make_dirs_records_only_what_it_made_and_remove_tree_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("a")).unwrap();
        let mut created = Vec::new();
        let leaf = make_dirs(tmp.path(), Path::new("a/b/c"), &mut created).unwrap();
        assert_eq!(leaf, tmp.path().join("a/b/c"));
        assert_eq!(created, vec![tmp.path().join("a/b"), tmp.path().join("a/b/c")]);
        remove_created(&created);
        assert!(tmp.path().join("a").exists() && !tmp.path().join("a/b").exists());

        make_dirs(tmp.path(), Path::new("a/b/c/d"), &mut Vec::new()).unwrap();
        make_dirs(tmp.path(), Path::new("a/b/e"), &mut Vec::new()).unwrap();
        remove_tree(&tmp.path().join("a/b")).unwrap();
        assert!(!tmp.path().join("a/b").exists());
        remove_tree(&tmp.path().join("a/b")).unwrap();
    }

    #[test]
    fn write_errors_carry_value_and_path() {
        let missing = Path::new("/nonexistent-berth/pids.max");
        let err = write(missing, "max").unwrap_err();
        assert!(matches!(err, CgroupError::Write { ref path, ref value, .. } if path == missing && value == "max"));
    }
}
