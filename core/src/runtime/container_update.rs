//! `update`: changes a running container's memory, CPU and pids limits
//! (runc's `update --resources FILE`, the OCI `linux.resources` shape).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::cgroups::Cgroup;
use super::error::{Result, RuntimeError};
use super::state::{Root, Status};

/// Applies `resources` (JSON read from `file`, `-` for stdin).
pub fn update(root: &Root, id: &str, file: &Path) -> Result<()> {
    let st = root.load(id)?;
    let status = st.status(&root.container_dir(id));
    if status == Status::Stopped {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status: status.to_string(),
            op: "update",
        });
    }
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| RuntimeError::io("read", "stdin", e))?
    } else {
        std::fs::read_to_string(file).map_err(|e| RuntimeError::io("read", file, e))?
    };
    let resources: LinuxResources =
        serde_json::from_str(&text).map_err(|e| RuntimeError::Other(format!("{}: not linux.resources: {e}", file.display())))?;
    Cgroup::open(&st.cgroup_path)?.update(&resources)?;
    Ok(())
}
