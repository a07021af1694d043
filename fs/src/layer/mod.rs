//! Layers: applying OCI layer tarballs to directories and producing them
//! back from upper directories, with whiteouts in either on-disk form.

pub mod apply;
pub mod diff;
pub mod store;
pub mod whiteout;

use std::path::{Path, PathBuf};

/// Why a layer could not be applied or produced.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// An entry that would write outside the layer, or is malformed.
    #[error("layer entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: String },
    #[error("{op} {path}: {error}")]
    Io {
        op: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
}

impl LayerError {
    pub(crate) fn io(op: &'static str, path: &Path, error: std::io::Error) -> Self {
        LayerError::Io {
            op,
            path: path.to_path_buf(),
            error,
        }
    }

    pub(crate) fn unsafe_entry(entry: &str, reason: &str) -> Self {
        LayerError::Unsafe {
            entry: entry.to_string(),
            reason: reason.to_string(),
        }
    }
}
