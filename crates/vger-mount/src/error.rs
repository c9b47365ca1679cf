//! The mount's errors, each one line naming the cause and, where there is
//! one, the fix; [`MountError::status`] maps them to HTTP.

use axum::http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{0}")]
    Engine(vger_engine::EngineError),
    #[error("{0} is not in this snapshot")]
    NotFound(String),
    #[error("{0} is not a folder of this snapshot")]
    NotADirectory(String),
    #[error("snapshot {0} is not in the repository (deleted since it was listed?)")]
    NoSnapshot(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Busy(String),
    #[error(
        "{address} is not a loopback address and vger mount serves decrypted backups: add --allow-public \
         (and set VGER_MOUNT_TOKEN) to serve it on the network, or use 127.0.0.1:PORT"
    )]
    PublicWithoutFlag { address: String },
    #[error(
        "--allow-public needs a token: set VGER_MOUNT_TOKEN to a long random secret (clients send it with \
         HTTP Basic or Bearer authentication)"
    )]
    PublicWithoutToken,
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: String, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cancelled on request; what was restored before stays")]
    Cancelled,
    #[error("{0}")]
    Other(String),
}

impl MountError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        MountError::Io { context: context.into(), source }
    }

    /// The HTTP status a request failing with this error gets.
    pub fn status(&self) -> StatusCode {
        match self {
            MountError::NotFound(_) | MountError::NoSnapshot(_) => StatusCode::NOT_FOUND,
            MountError::NotADirectory(_) => StatusCode::CONFLICT,
            MountError::BadRequest(_) => StatusCode::BAD_REQUEST,
            MountError::Forbidden(_) => StatusCode::FORBIDDEN,
            MountError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The engine's errors that have a meaning of their own here (a missing
/// path is a 404, a cancelled restore not a failure); the rest as they are.
impl From<vger_engine::EngineError> for MountError {
    fn from(e: vger_engine::EngineError) -> Self {
        use vger_engine::EngineError;
        match e {
            EngineError::TreePathNotFound { path } => MountError::NotFound(path),
            EngineError::NotADirectory { path } => MountError::NotADirectory(path),
            EngineError::InvalidTreePath { path } => {
                MountError::BadRequest(format!("the path `{path}` is not allowed"))
            }
            EngineError::Cancelled => MountError::Cancelled,
            other => MountError::Engine(other),
        }
    }
}
