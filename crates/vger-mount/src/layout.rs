//! The namespace the mount serves: `/` lists the sources, `/LABEL/` a
//! source's snapshots as folders named by local time and short ID
//! (`2026-12-04T14-30-00_1a2b3c4d`) plus `latest`, and below a snapshot
//! folder its tree. `--source` puts one source's list at the root,
//! `--snapshot` one snapshot's tree.

use std::collections::BTreeMap;

use chrono::Local;
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::store::SnapshotMeta;
use crate::MountError;

/// The name of the folder that always shows a source's newest snapshot.
pub const LATEST: &str = "latest";

/// What the root of the server shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every source of the repository.
    Repository,
    /// One source's snapshots.
    Source(String),
    /// One snapshot's tree (by full ID).
    Snapshot(vger_format::id::SnapshotId),
}

/// Where a request path leads.
#[derive(Debug, Clone)]
pub enum Place {
    /// The list of sources.
    Sources,
    /// A source's snapshots.
    Source(String),
    /// A path in a snapshot.
    Tree(Box<TreePlace>),
}

#[derive(Debug, Clone)]
pub struct TreePlace {
    pub snapshot: SnapshotMeta,
    /// The snapshot path (raw bytes, `/`-separated, empty at its root).
    pub path: Vec<u8>,
    /// The URL path of the snapshot's root, ending in `/`.
    pub root_url: String,
}

/// A snapshot's folder name: its start in local time and its short ID.
pub fn snapshot_name(s: &SnapshotMeta) -> String {
    format!("{}_{}", s.time.with_timezone(&Local).format("%Y-%m-%dT%H-%M-%S"), &s.id.to_hex()[..8])
}

/// The sources and their snapshots (oldest first), by label.
pub fn sources(snapshots: &[SnapshotMeta]) -> BTreeMap<&str, Vec<&SnapshotMeta>> {
    let mut out: BTreeMap<&str, Vec<&SnapshotMeta>> = BTreeMap::new();
    for s in snapshots {
        out.entry(s.source.as_str()).or_default().push(s);
    }
    out
}

/// Characters kept as they are in a path segment of a URL.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A name (raw bytes) as one percent-encoded URL path segment.
pub fn encode_segment(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A label (UTF-8) as one URL path segment.
pub fn encode_label(label: &str) -> String {
    utf8_percent_encode(label, SEGMENT).to_string()
}

/// The decoded segments of a URL path; `.`, `..`, NUL and `/` inside a
/// segment are refused (a path can only name what lies below the root).
pub fn segments(url_path: &str) -> Result<Vec<Vec<u8>>, MountError> {
    let mut out = Vec::new();
    for raw in url_path.split('/').filter(|s| !s.is_empty()) {
        let seg: Vec<u8> = percent_decode(raw.as_bytes()).collect();
        if seg == b"." || seg == b".." || seg.contains(&0) || seg.contains(&b'/') {
            return Err(MountError::BadRequest(format!("the path segment `{raw}` is not allowed")));
        }
        out.push(seg);
    }
    Ok(out)
}

/// Resolves a request path in `scope`.
pub fn resolve(scope: &Scope, snapshots: &[SnapshotMeta], url_path: &str) -> Result<Place, MountError> {
    let segs = segments(url_path)?;
    let not_found = || MountError::NotFound(url_path.to_string());
    let (source, rest, root_prefix) = match scope {
        Scope::Snapshot(id) => {
            let snap = snapshots.iter().find(|s| s.id == *id).ok_or_else(|| MountError::NoSnapshot(id.to_hex()))?;
            let tree = TreePlace { snapshot: snap.clone(), path: segs.join(&b'/'), root_url: "/".into() };
            return Ok(Place::Tree(Box::new(tree)));
        }
        Scope::Source(label) => (label.clone(), &segs[..], "/".to_string()),
        Scope::Repository => {
            let Some((first, rest)) = segs.split_first() else { return Ok(Place::Sources) };
            let label = String::from_utf8(first.clone()).map_err(|_| not_found())?;
            if !snapshots.iter().any(|s| s.source == label) {
                return Err(not_found());
            }
            let prefix = format!("/{}/", encode_label(&label));
            (label, rest, prefix)
        }
    };
    let Some((name, path)) = rest.split_first() else { return Ok(Place::Source(source)) };
    let name = std::str::from_utf8(name).map_err(|_| not_found())?;
    let mut of_source = snapshots.iter().filter(|s| s.source == source);
    let snap = if name == LATEST { of_source.next_back() } else { of_source.find(|s| snapshot_name(s) == name) };
    let snap = snap.ok_or_else(not_found)?;
    Ok(Place::Tree(Box::new(TreePlace {
        snapshot: snap.clone(),
        path: path.join(&b'/'),
        root_url: format!("{root_prefix}{}/", encode_label(name)),
    })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.
mod tests {
    use super::*;
    use vger_format::id::SnapshotId;

    fn snap(source: &str, secs: i64, byte: u8) -> SnapshotMeta {
        SnapshotMeta {
            id: SnapshotId([byte; 32]),
            time: chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default(),
            source: source.into(),
            hostname: "h".into(),
            username: "u".into(),
            paths: vec![],
            tags: vec![],
            files: 0,
            dirs: 0,
            bytes: 0,
        }
    }

    #[test]
    fn paths_resolve_to_sources_snapshots_and_trees() {
        let all = vec![snap("docs", 1_000, 1), snap("docs", 2_000, 2), snap("media", 3_000, 3)];
        assert!(matches!(resolve(&Scope::Repository, &all, "/"), Ok(Place::Sources)));
        assert!(matches!(resolve(&Scope::Repository, &all, "/docs/"), Ok(Place::Source(l)) if l == "docs"));
        let Ok(Place::Tree(t)) = resolve(&Scope::Repository, &all, "/docs/latest/a/b%20c") else { panic!("tree") };
        assert_eq!(t.snapshot.id, SnapshotId([2; 32]));
        assert_eq!(t.path, b"a/b c");
        assert_eq!(t.root_url, "/docs/latest/");
        let name = snapshot_name(&all[0]);
        assert!(name.ends_with("_01010101"), "{name}");
        let Ok(Place::Tree(t)) = resolve(&Scope::Repository, &all, &format!("/docs/{name}/")) else { panic!("tree") };
        assert_eq!(t.snapshot.id, SnapshotId([1; 32]));
        assert!(resolve(&Scope::Repository, &all, "/nope/").is_err());
        assert!(resolve(&Scope::Repository, &all, "/docs/latest/../x").is_err());
        assert!(resolve(&Scope::Repository, &all, "/docs/latest/%2e%2e/x").is_err());
        assert!(resolve(&Scope::Repository, &all, "/docs/latest/a%2Fb").is_err());
        let Ok(Place::Tree(t)) = resolve(&Scope::Snapshot(SnapshotId([3; 32])), &all, "/x/%FF") else { panic!() };
        assert_eq!(t.path, b"x/\xff", "non-UTF-8 names travel as percent-encoded bytes");
        assert!(matches!(resolve(&Scope::Source("media".into()), &all, "/"), Ok(Place::Source(_))));
    }

    #[test]
    fn names_encode_to_segments_that_decode_back() {
        let name = b"a b/%\xff<x>".to_vec();
        let enc = encode_segment(&name);
        assert!(!enc.contains('/') && !enc.contains('<'), "{enc}");
        let back: Vec<u8> = percent_decode(enc.as_bytes()).collect();
        assert_eq!(back, name);
    }
}
