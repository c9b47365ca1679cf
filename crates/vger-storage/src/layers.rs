//! Behaviour every remote backend shares, written once as layers: each
//! wraps an `Arc<dyn Storage>` and implements [`Storage`] again.
//!
//! [`wrap`] stacks them in this order, outermost first:
//!
//! ```text
//! RetryingStorage      transient errors retried with backoff; each retry goes through the layers below again
//!  └ ThrottledStorage  upload/download budget of this repository; waits before taking a connection
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

/// `backend` wrapped in every layer, configured from `opts`. The bandwidth
/// budgets belong to the storage returned: every connection of one
/// repository shares them, and two repositories opened by one process
/// (a copy, the daemon) each have their own.
pub fn wrap(backend: Arc<dyn Storage>, opts: &BackendOptions) -> Arc<dyn Storage> {
    let limited: Arc<dyn Storage> = Arc::new(ConnectionLimit::new(backend, opts.connections));
    let throttled: Arc<dyn Storage> = match (opts.upload_bytes_per_sec, opts.download_bytes_per_sec) {
        (None, None) => limited,
        (up, down) => Arc::new(ThrottledStorage::new(limited, up.map(Bandwidth::new), down.map(Bandwidth::new))),
    };
    Arc::new(RetryingStorage::new(throttled, opts.retry))
}

/// A local directory in the retry layer only: it retries nothing (local
/// errors are not transient) but logs each request at `-vv`. No
/// bandwidth or connection limits on a local disk, and staged pack writes
/// (which a throttle would turn off) stay available.
pub fn wrap_local(backend: Arc<dyn Storage>, opts: &BackendOptions) -> Arc<dyn Storage> {
    Arc::new(RetryingStorage::new(backend, opts.retry))
}
