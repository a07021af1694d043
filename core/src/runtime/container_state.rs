//! `state` and `list`: what the runtime knows about its containers.

use super::error::Result;
use super::state::Root;

/// The state JSON of one container, as runc prints it.
pub fn state(root: &Root, id: &str) -> Result<serde_json::Value> {
    let st = root.load(id)?;
    Ok(st.oci_state(st.status(&root.container_dir(id))))
}

/// The state of every container under the root.
pub fn list(root: &Root) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        // A container deleted while we list is simply gone.
        if let Ok(v) = state(root, &id) {
            out.push(v);
        }
    }
    Ok(out)
}
