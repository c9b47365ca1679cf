//! Binding, running and stopping the server, and the dispatcher that sends
//! each request to WebDAV, the file and archive responses, the JSON API or
//! the web UI. The server runs on its own small tokio runtime in a thread,
//! so synchronous callers (the CLI, the daemon) can start and stop it.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::{Notify, Semaphore};

use crate::layout::{self, Place, Scope};
use crate::restore_jobs::RestoreJobs;
use crate::store::{Node, NodeKind, SnapshotStore};
use crate::{api, archive, content, dav, guard, ui, MountError};

/// Store calls (listings, lookups) running at once: each holds a tree
/// chunk or a directory page, so this bounds their memory.
const STORE_CALLS: usize = 8;
/// File and archive bodies streaming at once; more wait for a turn. Each
/// holds at most a chunk and a few pieces in flight.
const STREAMS: usize = 16;
/// How long a stop waits for responses still being sent.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How to serve.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// `HOST:PORT` to listen on; port 0 picks a free one.
    pub address: String,
    /// Allow an address other than loopback (then `token` is required).
    pub allow_public: bool,
    /// The secret clients send (HTTP Basic password or Bearer token).
    pub token: Option<String>,
    /// Host names accepted in the Host header besides `localhost` and the
    /// bound address (for a public bind reached by name).
    pub allowed_hosts: Vec<String>,
    pub scope: Scope,
    /// Shown in the page title (the repository's label).
    pub title: String,
}

/// What every request handler shares.
pub struct AppState {
    pub store: Arc<dyn SnapshotStore>,
    pub scope: Scope,
    pub bound: SocketAddr,
    pub token: Option<String>,
    pub allowed_hosts: Vec<String>,
    /// The session token a state-changing request must carry.
    pub csrf: String,
    /// Restores to this machine are offered only on a loopback bind.
    pub restore_allowed: bool,
    pub title: String,
    pub jobs: RestoreJobs,
    store_calls: Semaphore,
    pub streams: Arc<Semaphore>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    /// Runs a store call on the blocking pool (at most [`STORE_CALLS`] at once).
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T, MountError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn SnapshotStore) -> Result<T, MountError> + Send + 'static,
    {
        let _permit =
            self.store_calls.acquire().await.map_err(|_| MountError::Other("the server is stopping".into()))?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| MountError::Other(format!("a request's worker failed: {e}")))?
    }

    /// Resolves a URL path against the current snapshot list.
    pub async fn place(self: &Arc<Self>, url_path: &str) -> Result<Place, MountError> {
        let snapshots = self.call(|s| s.snapshots()).await?;
        layout::resolve(&self.scope, &snapshots, url_path)
    }
}

/// A running server; dropping it stops it.
pub struct RunningMount {
    pub address: SocketAddr,
    pub restore_allowed: bool,
    stop: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningMount {
    /// Stops accepting, lets responses in flight finish for a moment, and returns.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningMount {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Checks the address rules before anything is opened: a non-loopback
/// address needs `allow_public` and a token. Returns the address to bind.
pub fn check_options(opts: &MountOptions) -> Result<SocketAddr, MountError> {
    let addr = resolve_address(&opts.address)?;
    if !addr.ip().is_loopback() {
        if !opts.allow_public {
            return Err(MountError::PublicWithoutFlag { address: opts.address.clone() });
        }
        if opts.token.as_deref().is_none_or(str::is_empty) {
            return Err(MountError::PublicWithoutToken);
        }
    }
    Ok(addr)
}

/// Checks the options, binds and starts serving `store` in the background.
pub fn start(store: Arc<dyn SnapshotStore>, opts: MountOptions) -> Result<RunningMount, MountError> {
    let addr = check_options(&opts)?;
    let loopback = addr.ip().is_loopback();
    let token = opts.token.filter(|t| !t.is_empty());
    let listener = TcpListener::bind(addr).map_err(|e| listen_error(&opts.address, &e))?;
    listener.set_nonblocking(true).map_err(|e| listen_error(&opts.address, &e))?;
    let bound = listener.local_addr().map_err(|e| listen_error(&opts.address, &e))?;
    let csrf = hex::encode(vger_format::id::random_id().map_err(|e| MountError::Other(e.to_string()))?);
    let state = Arc::new(AppState {
        store,
        scope: opts.scope,
        bound,
        token,
        allowed_hosts: opts.allowed_hosts,
        csrf,
        restore_allowed: loopback,
        title: opts.title,
        jobs: RestoreJobs::default(),
        store_calls: Semaphore::new(STORE_CALLS),
        streams: Arc::new(Semaphore::new(STREAMS)),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vger-mount")
        .enable_all()
        .build()
        .map_err(|e| MountError::io("cannot start the server's runtime", e))?;
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    let app = Router::new().fallback(dispatch).with_state(state);
    let thread = std::thread::Builder::new()
        .name("vger-mount".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!("cannot serve: {e}"),
                };
                // Request/response traffic of small replies: send each
                // write at once instead of holding it for the client's ACK
                // (Nagle). rclone's copy speed was the same with and without
                // it (its WebDAV pacer spaces requests 10 ms apart).
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!("TCP_NODELAY not set: {e}");
                    }
                });
                let graceful = stopped.clone();
                let serve = axum::serve(listener, app).with_graceful_shutdown(async move { graceful.notified().await });
                let cut_off = async {
                    stopped.notified().await;
                    tokio::time::sleep(STOP_GRACE).await;
                };
                tokio::select! {
                    r = serve => if let Err(e) = r { tracing::error!("the server stopped: {e}") },
                    () = cut_off => {}
                }
            });
            runtime.shutdown_timeout(Duration::from_millis(500));
        })
        .map_err(|e| MountError::io("cannot start the server thread", e))?;
    Ok(RunningMount { address: bound, restore_allowed: loopback, stop, thread: Some(thread) })
}

fn resolve_address(address: &str) -> Result<SocketAddr, MountError> {
    let bad = |reason: String| MountError::Listen { address: address.to_string(), reason };
    let mut addrs = address
        .to_socket_addrs()
        .map_err(|e| bad(format!("{e}; give HOST:PORT such as 127.0.0.1:7576 (port 0 picks a free one)")))?;
    addrs.next().ok_or_else(|| bad("it resolves to no address".into()))
}

fn listen_error(address: &str, e: &std::io::Error) -> MountError {
    let reason = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "the port is already in use; choose another with --address HOST:PORT, or port 0 for a free one".to_string()
        }
        std::io::ErrorKind::PermissionDenied => format!("{e}; ports below 1024 need privileges, choose a higher one"),
        _ => e.to_string(),
    };
    MountError::Listen { address: address.to_string(), reason }
}

/// The addresses to give each kind of client, for printing.
pub fn client_addresses(addr: SocketAddr) -> Vec<(&'static str, String)> {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "HOSTNAME".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let port = addr.port();
    vec![
        ("browser", format!("http://{host}:{port}/")),
        ("GNOME Files, KDE Dolphin", format!("dav://{host}:{port}/")),
        ("macOS Finder (Go > Connect to Server)", format!("http://{host}:{port}/")),
        ("Windows Explorer (Map network drive)", format!("\\\\{host}@{port}\\DavWWWRoot")),
        ("rclone", format!("--webdav-url http://{host}:{port}/")),
    ]
}

/// The query parameters of a request.
pub type Query = HashMap<String, String>;

async fn dispatch(State(st): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(refusal) = guard::check(&st, &parts.headers) {
        return *refusal;
    }
    let path = parts.uri.path().to_string();
    let query: Query = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    if let Some(name) = query.get("asset") {
        return ui::asset(name);
    }
    let result = match parts.method.as_str() {
        "OPTIONS" => Ok(dav::options()),
        "PROPFIND" => dav::propfind(&st, &path, &parts.headers, body).await,
        "LOCK" => dav::lock(&path, &parts.headers, body).await,
        "UNLOCK" => Ok(StatusCode::NO_CONTENT.into_response()),
        "GET" | "HEAD" => get(&st, &path, &query, &parts.headers, parts.method == Method::HEAD).await,
        "POST" => api::post(&st, &path, &query, &parts.headers, body).await,
        "PUT" | "DELETE" | "MKCOL" | "COPY" | "MOVE" | "PROPPATCH" | "PATCH" => Ok(read_only(&parts.method)),
        _ => Ok(text(StatusCode::METHOD_NOT_ALLOWED, format!("{} is not served here", parts.method))),
    };
    result.unwrap_or_else(error_response)
}

async fn get(st: &Shared, path: &str, query: &Query, headers: &HeaderMap, head: bool) -> Result<Response, MountError> {
    if let Some(call) = query.get("api") {
        return api::get(st, path, call, query).await;
    }
    let place = st.place(path).await?;
    let layout::Place::Tree(tree) = place else { return Ok(ui::shell(st)) };
    let inner = tree.path.clone();
    let snap = tree.snapshot.id;
    let node = st.call(move |s| s.stat(&snap, &inner)).await?;
    let node = node.ok_or_else(|| MountError::NotFound(path.to_string()))?;
    match node.kind {
        NodeKind::Dir => match query.get("download").map(String::as_str) {
            Some(format) => archive::download(st, &tree, &node, format),
            None => Ok(ui::shell(st)),
        },
        NodeKind::File => content::serve(st, &node, headers, head, query.contains_key("download")).await,
        NodeKind::Symlink | NodeKind::Special => Err(not_served(&node)),
    }
}

fn not_served(node: &Node) -> MountError {
    match &node.link_target {
        Some(t) => MountError::NotFound(format!(
            "{} is a symbolic link to {} (links are listed, not followed)",
            node.name_lossy(),
            String::from_utf8_lossy(t)
        )),
        None => MountError::NotFound(format!("{} is a special file (fifo, socket or device)", node.name_lossy())),
    }
}

/// The answer to every write method.
fn read_only(method: &Method) -> Response {
    text(StatusCode::FORBIDDEN, format!("{method} refused: vger mount serves snapshots read-only\n"))
}

/// A short plain-text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body: String = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from(body)).into_response()
}

pub fn error_response(e: MountError) -> Response {
    let status = e.status();
    if status.is_server_error() {
        tracing::warn!("request failed: {e}");
    }
    text(status, e.to_string())
}
