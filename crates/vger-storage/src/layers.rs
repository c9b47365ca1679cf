//! Behaviour every remote backend shares, written once as layers: each
//! wraps an `Arc<dyn Storage>` and implements [`Storage`] again.
//!
//! [`wrap`] stacks them in this order, outermost first:
//!
//! ```text
//! RetryingStorage      transient errors retried with backoff; each retry goes through the layers below again
//!  └ ThrottledStorage  process-wide upload/download budget; waits before taking a connection
//!     └ ConnectionLimit at most `connections` requests in flight
//!        └ backend     S3, SFTP, ...
//! ```
//!
//! Retry is outermost so that a backoff wait holds neither a connection nor
//! bandwidth, and a resent body is charged again. The throttle sits above
//! the connection limit so that a request waiting for its budget does not
//! keep a connection from others.

mod limit;
mod retry;
mod throttle;

use std::sync::Arc;

pub use limit::ConnectionLimit;
pub use retry::RetryingStorage;
pub use throttle::{Bandwidth, ThrottledStorage};

use crate::{BackendOptions, Storage};

/// `backend` wrapped in every layer, configured from `opts`.
pub fn wrap(backend: Arc<dyn Storage>, opts: &BackendOptions) -> Arc<dyn Storage> {
    let limited: Arc<dyn Storage> = Arc::new(ConnectionLimit::new(backend, opts.connections));
    let throttled: Arc<dyn Storage> = match (opts.upload_bytes_per_sec, opts.download_bytes_per_sec) {
        (None, None) => limited,
        (up, down) => Arc::new(ThrottledStorage::new(
            limited,
            up.map(Bandwidth::process_upload),
            down.map(Bandwidth::process_download),
        )),
    };
    Arc::new(RetryingStorage::new(throttled, opts.retry))
}
