//! The JSON the web UI reads (`GET <path>?api=NAME`) and the two requests
//! that change anything (`POST <path>?api=restore` and `POST
//! ?api=cancel&job=N`, each with the session token). Names travel as text for display and as percent-encoded `href`s
//! for links, so a name that is not UTF-8 still round-trips.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::layout::{self, encode_label, encode_segment, snapshot_name, Place, TreePlace, LATEST};
use crate::server::{Query, Shared};
use crate::store::{Change, FindQuery, Node, NodeKind, SnapshotMeta, Version};
use crate::{guard, restore_jobs, MountError};

/// Entries per page of a folder listing.
const PAGE_DEFAULT: usize = 2000;
const PAGE_MAX: usize = 10_000;
/// Distinct paths a search returns.
const FIND_LIMIT: usize = 500;
/// Lines of a snapshot diff returned.
const DIFF_LIMIT: usize = 5000;
/// Largest file compared as text.
const TEXT_DIFF_MAX: u64 = 2 << 20;
/// Largest restore request body.
const POST_LIMIT: usize = 1 << 20;

fn json_response(v: Value) -> Response {
    let mut r = (StatusCode::OK, Body::from(v.to_string())).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    r
}

fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::Dir => "dir",
        NodeKind::File => "file",
        NodeKind::Symlink => "symlink",
        NodeKind::Special => "special",
    }
}

fn node_json(n: &Node, href: String) -> Value {
    json!({
        "name": n.name_lossy(),
        "href": href,
        "kind": kind_name(n.kind),
        "size": n.size,
        "mtime": n.mtime().to_rfc3339(),
        "mode": format!("{:04o}", n.mode & 0o7777),
        "user": n.user.clone().unwrap_or_else(|| n.uid.to_string()),
        "group": n.group.clone().unwrap_or_else(|| n.gid.to_string()),
        "target": n.link_target.as_ref().map(|t| String::from_utf8_lossy(t).into_owned()),
    })
}

/// The URL of a snapshot path, given its snapshot's root URL.
fn href_of(root_url: &str, path: &[u8], dir: bool) -> String {
    let mut out = root_url.to_string();
    let segs: Vec<String> = path.split(|b| *b == b'/').filter(|s| !s.is_empty()).map(encode_segment).collect();
    out.push_str(&segs.join("/"));
    if dir && !path.is_empty() {
        out.push('/');
    }
    out
}

/// The root URL of a snapshot in the server's scope.
fn snapshot_root(st: &Shared, s: &SnapshotMeta) -> String {
    match &st.scope {
        layout::Scope::Snapshot(_) => "/".into(),
        layout::Scope::Source(_) => format!("/{}/", encode_label(&snapshot_name(s))),
        layout::Scope::Repository => format!("/{}/{}/", encode_label(&s.source), encode_label(&snapshot_name(s))),
    }
}

fn snapshot_json(st: &Shared, s: &SnapshotMeta) -> Value {
    json!({
        "id": s.id.to_hex(),
        "name": snapshot_name(s),
        "href": snapshot_root(st, s),
        "source": s.source,
        "time": s.time.to_rfc3339(),
        "host": s.hostname,
        "user": s.username,
        "paths": s.paths,
        "tags": s.tags,
        "files": s.files,
        "dirs": s.dirs,
        "bytes": s.bytes,
    })
}

fn tree_of(place: Place, what: &str) -> Result<TreePlace, MountError> {
    match place {
        Place::Tree(t) => Ok(*t),
        _ => Err(MountError::BadRequest(format!("{what} works inside a snapshot"))),
    }
}

pub async fn get(st: &Shared, path: &str, call: &str, query: &Query) -> Result<Response, MountError> {
    let place = st.place(path).await?;
    let value = match call {
        "list" => list(st, place, query).await?,
        "snapshots" => {
            let snaps = st.call(|s| s.snapshots()).await?;
            json!({ "snapshots": snaps.iter().map(|s| snapshot_json(st, s)).collect::<Vec<_>>() })
        }
        "stat" => {
            let t = tree_of(place, "stat")?;
            let (snap, p) = (t.snapshot.id, t.path.clone());
            let node = st.call(move |s| s.stat(&snap, &p)).await?.ok_or_else(|| MountError::NotFound(path.into()))?;
            json!({ "node": node_json(&node, path.to_string()), "snapshot": snapshot_json(st, &t.snapshot) })
        }
        "find" => find(st, place, query).await?,
        "versions" => versions(st, tree_of(place, "versions")?).await?,
        "diff" => diff(st, tree_of(place, "diff")?, query).await?,
        "textdiff" => text_diff(st, tree_of(place, "textdiff")?, query).await?,
        "restore" => {
            let id = query.get("job").and_then(|j| j.parse().ok()).unwrap_or(0);
            st.jobs.get(id).ok_or_else(|| MountError::NotFound(format!("restore job {id}")))?.to_json()
        }
        other => return Err(MountError::BadRequest(format!("unknown api `{other}`"))),
    };
    Ok(json_response(value))
}

async fn list(st: &Shared, place: Place, query: &Query) -> Result<Value, MountError> {
    let snaps = st.call(|s| s.snapshots()).await?;
    match place {
        Place::Sources => {
            let sources: Vec<Value> = layout::sources(&snaps)
                .into_iter()
                .map(|(label, list)| {
                    let last = list.last();
                    json!({
                        "name": label,
                        "href": format!("/{}/", encode_label(label)),
                        "snapshots": list.len(),
                        "latest": last.map(|s| s.time.to_rfc3339()),
                        "bytes": last.map(|s| s.bytes),
                        "host": last.map(|s| s.hostname.clone()),
                    })
                })
                .collect();
            Ok(json!({ "kind": "sources", "sources": sources }))
        }
        Place::Source(label) => {
            let own: Vec<Value> = snaps.iter().filter(|s| s.source == label).map(|s| snapshot_json(st, s)).collect();
            let base = match st.scope {
                layout::Scope::Source(_) => "/".to_string(),
                _ => format!("/{}/", encode_label(&label)),
            };
            Ok(json!({ "kind": "source", "source": label, "latest": format!("{base}{LATEST}/"), "snapshots": own }))
        }
        Place::Tree(t) => {
            let limit = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX);
            let after = query.get("after").map(|a| percent_encoding::percent_decode_str(a).collect::<Vec<u8>>());
            let (snap, dir) = (t.snapshot.id, t.path.clone());
            let page = st.call(move |s| s.read_dir(&snap, &dir, after.as_deref(), limit)).await?;
            let entries: Vec<Value> = page
                .entries
                .iter()
                .map(|n| node_json(n, href_of(&t.root_url, &[t.path.as_slice(), b"/", &n.name].concat(), n.is_dir())))
                .collect();
            Ok(json!({
                "kind": "dir",
                "snapshot": snapshot_json(st, &t.snapshot),
                "root": t.root_url,
                "path": String::from_utf8_lossy(&t.path),
                "entries": entries,
                "next": page.next.map(|n| encode_segment(&n)),
                "restore_allowed": st.restore_allowed,
            }))
        }
    }
}

/// The snapshots of the same source as `t`, oldest first.
async fn same_source(st: &Shared, t: &TreePlace) -> Result<Vec<SnapshotMeta>, MountError> {
    let snaps = st.call(|s| s.snapshots()).await?;
    Ok(snaps.iter().filter(|s| s.source == t.snapshot.source).cloned().collect())
}

async fn find(st: &Shared, place: Place, query: &Query) -> Result<Value, MountError> {
    let pattern = query.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    if pattern.is_empty() {
        return Err(MountError::BadRequest("give a name to search for with ?q=".into()));
    }
    let t = tree_of(place, "search")?;
    let all = query.get("scope").map(String::as_str) == Some("source");
    let snaps = if all { same_source(st, &t).await? } else { vec![t.snapshot.clone()] };
    let ids: Vec<_> = snaps.iter().map(|s| s.id).collect();
    let q = FindQuery { pattern, under: t.path.clone(), limit: FIND_LIMIT };
    let found = st.call(move |s| s.find(&ids, &q)).await?;
    let by_id = |id| snaps.iter().find(|s| s.id == id);
    let matches: Vec<Value> = found
        .matches
        .iter()
        .map(|m| {
            // Link into the newest snapshot that holds the path.
            let holder = m.versions.iter().rev().find(|v| v.node.is_some()).and_then(|v| by_id(v.snapshot));
            let root = holder.map(|s| snapshot_root(st, s)).unwrap_or_else(|| t.root_url.clone());
            json!({
                "path": String::from_utf8_lossy(&m.path),
                "kind": kind_name(m.kind),
                "href": href_of(&root, &m.path, m.kind == NodeKind::Dir),
                "versions": m.versions.iter().map(|v| version_json(st, v, by_id(v.snapshot), &m.path)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({ "matches": matches, "truncated": found.truncated, "snapshots": snaps.len() }))
}

fn change_name(c: Change) -> &'static str {
    match c {
        Change::Added => "added",
        Change::Modified => "modified",
        Change::Metadata => "metadata",
        Change::Unchanged => "unchanged",
        Change::Removed => "removed",
        Change::Type => "type",
    }
}

fn version_json(st: &Shared, v: &Version, snap: Option<&SnapshotMeta>, path: &[u8]) -> Value {
    let href = match (snap, &v.node) {
        (Some(s), Some(n)) => Some(href_of(&snapshot_root(st, s), path, n.is_dir())),
        _ => None,
    };
    json!({
        "snapshot": v.snapshot.to_hex(),
        "name": snap.map(snapshot_name),
        "time": v.time.to_rfc3339(),
        "change": change_name(v.change),
        "size": v.node.as_ref().map(|n| n.size),
        "mtime": v.node.as_ref().map(|n| n.mtime().to_rfc3339()),
        "href": href,
    })
}

async fn versions(st: &Shared, t: TreePlace) -> Result<Value, MountError> {
    let snaps = same_source(st, &t).await?;
    let (list, path) = (snaps.clone(), t.path.clone());
    let versions = st.call(move |s| s.versions(&list, &path)).await?;
    let out: Vec<Value> =
        versions.iter().map(|v| version_json(st, v, snaps.iter().find(|s| s.id == v.snapshot), &t.path)).collect();
    Ok(json!({ "path": String::from_utf8_lossy(&t.path), "versions": out }))
}

/// The snapshot named by `?other=` (a folder name, `latest` or an ID
/// prefix) among those of `t`'s source.
async fn other_snapshot(st: &Shared, t: &TreePlace, query: &Query) -> Result<SnapshotMeta, MountError> {
    let other = query.get("other").map(String::as_str).unwrap_or("");
    let snaps = same_source(st, t).await?;
    let found = if other == LATEST {
        snaps.last()
    } else {
        snaps.iter().find(|s| snapshot_name(s) == other || (other.len() >= 8 && s.id.to_hex().starts_with(other)))
    };
    found.cloned().ok_or_else(|| MountError::NotFound(format!("snapshot `{other}` of source {}", t.snapshot.source)))
}

async fn diff(st: &Shared, t: TreePlace, query: &Query) -> Result<Value, MountError> {
    let other = other_snapshot(st, &t, query).await?;
    let (a, b, dir) = (other.id, t.snapshot.id, t.path.clone());
    let d = st.call(move |s| s.diff(&a, &b, &dir, DIFF_LIMIT)).await?;
    let (root_before, root_after) = (snapshot_root(st, &other), snapshot_root(st, &t.snapshot));
    let lines: Vec<Value> = d
        .lines
        .iter()
        .map(|l| {
            let root = if l.change == Change::Removed { &root_before } else { &root_after };
            json!({
                "path": String::from_utf8_lossy(&l.path),
                "change": change_name(l.change),
                "size_before": l.size_before,
                "size_after": l.size_after,
                "dir": l.is_dir,
                "href": href_of(root, &l.path, l.is_dir),
            })
        })
        .collect();
    Ok(json!({
        "from": snapshot_json(st, &other),
        "to": snapshot_json(st, &t.snapshot),
        "changes": lines,
        "truncated": d.truncated,
        "summary": d.summary,
    }))
}

/// Reads a whole (small) file of a snapshot as text.
fn read_text(
    store: &dyn crate::store::SnapshotStore,
    snap: &vger_format::id::SnapshotId,
    path: &[u8],
) -> Result<String, MountError> {
    let node = store.stat(snap, path)?.ok_or_else(|| MountError::NotFound(String::from_utf8_lossy(path).into()))?;
    if node.kind != NodeKind::File {
        return Err(MountError::BadRequest("only files can be compared as text".into()));
    }
    if node.size > TEXT_DIFF_MAX {
        return Err(MountError::BadRequest(format!(
            "the file is over {} MiB, too large to compare as text",
            TEXT_DIFF_MAX >> 20
        )));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut store.open(&node)?, &mut bytes)
        .map_err(|e| MountError::io("reading the file", e))?;
    if bytes.contains(&0) {
        return Err(MountError::BadRequest("the file is binary; download both versions to compare them".into()));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn text_diff(st: &Shared, t: TreePlace, query: &Query) -> Result<Value, MountError> {
    let other = other_snapshot(st, &t, query).await?;
    let (a, b, path) = (other.id, t.snapshot.id, t.path.clone());
    let (before, after) = st.call(move |s| Ok((read_text(s, &a, &path)?, read_text(s, &b, &path)?))).await?;
    let diff = similar::TextDiff::from_lines(&before, &after);
    let mut hunks = Vec::new();
    for group in diff.grouped_ops(3) {
        let mut lines = Vec::new();
        for op in group {
            for change in diff.iter_changes(&op) {
                let tag = match change.tag() {
                    similar::ChangeTag::Delete => "-",
                    similar::ChangeTag::Insert => "+",
                    similar::ChangeTag::Equal => " ",
                };
                lines.push(json!({
                    "tag": tag,
                    "old": change.old_index().map(|i| i + 1),
                    "new": change.new_index().map(|i| i + 1),
                    "text": change.value().trim_end_matches('\n'),
                }));
            }
        }
        hunks.push(lines);
    }
    Ok(json!({ "from": snapshot_json(st, &other), "to": snapshot_json(st, &t.snapshot), "hunks": hunks }))
}

pub async fn post(
    st: &Shared,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, MountError> {
    if !guard::csrf_ok(st, headers) {
        return Err(MountError::Forbidden(
            "refused: this request lacks the page's session token (cross-site requests cannot change anything)".into(),
        ));
    }
    match query.get("api").map(String::as_str) {
        Some("restore") => {}
        Some("cancel") => return cancel(st, query),
        _ => return Err(MountError::Forbidden("vger mount serves snapshots read-only".into())),
    }
    if !st.restore_allowed {
        return Err(MountError::Forbidden(
            "restores to this machine are offered only when vger mount listens on loopback".into(),
        ));
    }
    let bytes = axum::body::to_bytes(body, POST_LIMIT)
        .await
        .map_err(|_| MountError::BadRequest("the restore request is too large".into()))?;
    let req: Value = serde_json::from_slice(&bytes).map_err(|e| MountError::BadRequest(format!("not JSON: {e}")))?;
    let target = restore_jobs::check_target(req["target"].as_str().unwrap_or(""))?;
    let t = tree_of(st.place(path).await?, "restore")?;
    let mut paths = Vec::new();
    for item in req["items"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let href = item.as_str().ok_or_else(|| MountError::BadRequest("items are URL paths".into()))?;
        let p = tree_of(st.place(href).await?, "restore")?;
        if p.snapshot.id != t.snapshot.id {
            return Err(MountError::BadRequest("every item of a restore must come from the same snapshot".into()));
        }
        paths.push(p.path);
    }
    if paths.is_empty() && !t.path.is_empty() {
        paths.push(t.path.clone());
    }
    let job = st.jobs.start(st.store.clone(), t.snapshot.id, paths, &target)?;
    Ok(json_response(job.to_json()))
}

/// Stops a running restore job at its next safe point; its state then
/// turns to `cancelled` (the page keeps polling it).
fn cancel(st: &Shared, query: &Query) -> Result<Response, MountError> {
    let id = query
        .get("job")
        .and_then(|j| j.parse().ok())
        .ok_or_else(|| MountError::BadRequest("cancel needs the job's number: ?api=cancel&job=N".into()))?;
    let job = st.jobs.get(id).ok_or_else(|| MountError::NotFound(format!("restore job {id}")))?;
    if !job.cancel() {
        return Err(MountError::BadRequest(format!("restore job {id} is not running")));
    }
    Ok(json_response(job.to_json()))
}
