//! The runtime's error type: every variant names what failed and where.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A failure inside the container's init or exec process, sent to the
/// runtime over the sync socket. `step` is the start-up step (see
/// [`crate::runtime::process::init`]), `path` the file it concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{step}{}: {message}", path.as_ref().map(|p| format!(" {p}")).unwrap_or_default())]
pub struct InitError {
    pub step: String,
    pub path: Option<String>,
    pub message: String,
}

impl InitError {
    pub fn new(step: &str, path: Option<&std::path::Path>, message: impl std::fmt::Display) -> Self {
        InitError {
            step: step.to_string(),
            path: path.map(|p| p.display().to_string()),
            message: message.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container id {0:?} is invalid: use letters, digits, '_', '-', '.', '+' (not '.' or '..')")]
    InvalidId(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {id:?} is {status}: cannot {op}")]
    BadState { id: String, status: String, op: &'static str },
    #[error("{path}: {reason}")]
    Spec { path: PathBuf, reason: String },
    // Causes are part of the message, not error sources, so that a printed
    // chain never repeats them.
    #[error("{op} {path}: {error}")]
    Io {
        op: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("container init failed: {0}")]
    Init(InitError),
    #[error("cgroup: {0}")]
    Cgroup(crate::runtime::cgroups::CgroupError),
    #[error("seccomp: {0}")]
    Seccomp(crate::security::seccomp::SeccompError),
    #[error("{hook} hook {path}: {reason}")]
    Hook { hook: &'static str, path: PathBuf, reason: String },
    #[error("{0}")]
    Other(String),
}

impl RuntimeError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            error,
        }
    }
}

impl From<InitError> for RuntimeError {
    fn from(e: InitError) -> Self {
        RuntimeError::Init(e)
    }
}

impl From<crate::runtime::cgroups::CgroupError> for RuntimeError {
    fn from(e: crate::runtime::cgroups::CgroupError) -> Self {
        RuntimeError::Cgroup(e)
    }
}

impl From<crate::security::seccomp::SeccompError> for RuntimeError {
    fn from(e: crate::security::seccomp::SeccompError) -> Self {
        RuntimeError::Seccomp(e)
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;
