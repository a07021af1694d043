//! The error every driver call returns.

/// What went wrong inside a driver, in terms the engine can map onto an API
/// status (not found, conflict, bad argument) or report verbatim.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The named object (volume, layer, network, endpoint) does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    /// The object exists, or is in use, and the call conflicts with that.
    #[error("{kind} {name:?}: {reason}")]
    Conflict { kind: &'static str, name: String, reason: String },
    /// An option or argument the driver does not accept.
    #[error("invalid argument {what}: {reason}")]
    InvalidArgument { what: String, reason: String },
    /// A system call or file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A driver-specific failure, reported as the driver wrote it.
    #[error("{0}")]
    Driver(String),
}

impl DriverError {
    /// Shorthand for an [`DriverError::Io`] failure on `path`.
    pub fn io(op: &'static str, path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        DriverError::Io {
            op,
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// The result type of every driver call.
pub type Result<T> = std::result::Result<T, DriverError>;
