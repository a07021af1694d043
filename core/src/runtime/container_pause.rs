//! `pause` and `resume`: freezing and thawing every process of a
//! container through its cgroup.

use super::cgroups::Cgroup;
use super::error::{Result, RuntimeError};
use super::state::{Root, Status};

pub fn pause(root: &Root, id: &str) -> Result<()> {
    let st = root.load(id)?;
    let status = st.status(&root.container_dir(id));
    if status != Status::Running {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status: status.to_string(),
            op: "pause",
        });
    }
    Ok(Cgroup::open(&st.cgroup_path)?.freeze()?)
}

pub fn resume(root: &Root, id: &str) -> Result<()> {
    let st = root.load(id)?;
    let status = st.status(&root.container_dir(id));
    if status != Status::Paused {
        return Err(RuntimeError::BadState {
            id: id.to_string(),
            status: status.to_string(),
            op: "resume",
        });
    }
    Ok(Cgroup::open(&st.cgroup_path)?.thaw()?)
}
