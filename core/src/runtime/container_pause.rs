//! `pause` and `resume`: freezing and thawing every process of a
//! container through its cgroup.

use super::cgroups::Cgroup;
use super::error::{Result, RuntimeError};
use super::state::{Root, Status};

/// Freezes a running container.
pub fn pause(root: &Root, id: &str) -> Result<()> {
    with_cgroup(root, id, Status::Running, "pause", Cgroup::freeze)
}

/// Thaws a paused container.
pub fn resume(root: &Root, id: &str) -> Result<()> {
    with_cgroup(root, id, Status::Paused, "resume", Cgroup::thaw)
}

/// Runs `f` on the container's cgroup if the container is in state `want`.
fn with_cgroup(
    root: &Root,
    id: &str,
    want: Status,
    op: &'static str,
    f: fn(&Cgroup) -> std::result::Result<(), super::cgroups::CgroupError>,
) -> Result<()> {
    let st = root.load(id)?;
    let status = st.status(&root.container_dir(id));
    if status != want {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status: status.to_string(),
            op,
        });
    }
    Ok(f(&Cgroup::open(&st.cgroup_path)?)?)
}
