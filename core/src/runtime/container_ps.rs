//! `ps`: the processes of a container, from its cgroup.

use std::process::Command;

use super::cgroups::Cgroup;
use super::error::{Result, RuntimeError};
use super::state::Root;

/// The pids (host view) of every process in the container.
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let st = root.load(id)?;
    let mut pids = Cgroup::open(&st.cgroup_path)?.pids()?;
    pids.sort_unstable();
    Ok(pids)
}

/// `ps` output (run with `ps_args`, default `-ef`) restricted to the
/// container's processes, header kept, as runc prints it.
pub fn table(root: &Root, id: &str, ps_args: &[String]) -> Result<String> {
    let pids = pids(root, id)?;
    let args: Vec<String> = if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.to_vec() };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| RuntimeError::io("run", "ps", e))?;
    if !out.status.success() {
        return Err(RuntimeError::Other(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| RuntimeError::Other("ps output has no PID column".into()))?;
    let mut result = format!("{header}\n");
    for line in lines {
        if let Some(pid) = line.split_whitespace().nth(pid_col).and_then(|p| p.parse::<i32>().ok()) {
            if pids.contains(&pid) {
                result.push_str(line);
                result.push('\n');
            }
        }
    }
    Ok(result)
}
