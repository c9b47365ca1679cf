//! Search by name across snapshots, on top of any store's `walk`: each
//! matching path with its history over the searched snapshots. Memory is
//! bounded by the query's limit on distinct paths, not by the snapshots.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobMatcher};
use vger_format::id::SnapshotId;

use crate::store::{
    classify, Change, FindMatch, FindQuery, FindResult, Node, NodeKind, Result, SnapshotStore, Version, WalkStep,
};
use crate::MountError;

/// A name pattern: a case-insensitive glob when it holds `*`, `?` or `[`,
/// otherwise a case-insensitive substring.
pub struct NameMatcher {
    glob: Option<GlobMatcher>,
    needle: String,
}

impl NameMatcher {
    pub fn new(pattern: &str) -> Result<Self> {
        if pattern.contains(['*', '?', '[']) {
            let glob = GlobBuilder::new(pattern)
                .case_insensitive(true)
                .build()
                .map_err(|e| MountError::BadRequest(format!("search pattern `{pattern}`: {e}")))?;
            return Ok(Self { glob: Some(glob.compile_matcher()), needle: String::new() });
        }
        Ok(Self { glob: None, needle: pattern.to_lowercase() })
    }

    pub fn matches(&self, name: &[u8]) -> bool {
        let name = String::from_utf8_lossy(name);
        match &self.glob {
            Some(g) => g.is_match(name.as_ref()),
            None => name.to_lowercase().contains(&self.needle),
        }
    }
}

struct Track {
    kind: NodeKind,
    last: Option<Node>,
    /// The snapshot (as a position in the searched list) that last held it.
    seen: usize,
    versions: Vec<Version>,
}

/// [`SnapshotStore::find`] by walking each snapshot in turn. A folder whose
/// content tag (its tree ID) is the same as at the same path in the
/// snapshot before is not entered again: what matched below it is
/// unchanged, so searching many snapshots that share most folders costs
/// little more than searching one. The tags of the previous snapshot's
/// folders are the only state that grows with a snapshot (a path and 16
/// bytes per folder).
pub fn find_by_walk(store: &dyn SnapshotStore, snapshots: &[SnapshotId], query: &FindQuery) -> Result<FindResult> {
    let matcher = NameMatcher::new(&query.pattern)?;
    let metas = store.snapshots()?;
    let mut tracked: BTreeMap<Vec<u8>, Track> = BTreeMap::new();
    let mut truncated = false;
    let mut before: BTreeMap<Vec<u8>, [u8; 16]> = BTreeMap::new();
    for (gen, snap) in snapshots.iter().enumerate() {
        let time = metas.iter().find(|m| m.id == *snap).map(|m| m.time).unwrap_or_default();
        let mut now: BTreeMap<Vec<u8>, [u8; 16]> = BTreeMap::new();
        store.walk(snap, &query.under, &mut |path, node| {
            let mut step = WalkStep::Continue;
            if let (true, Some(tag)) = (node.is_dir(), node.content_tag) {
                now.insert(path.to_vec(), tag);
                if before.get(path) == Some(&tag) {
                    // Unchanged below: carry its folders and matches over.
                    let below = under(path);
                    for (p, t) in before.range(below.clone()..).take_while(|(p, _)| p.starts_with(&below)) {
                        now.insert(p.clone(), *t);
                    }
                    let unchanged = tracked.range_mut(below.clone()..).take_while(|(p, _)| p.starts_with(&below));
                    for (_, t) in unchanged.filter(|(_, t)| t.last.is_some()) {
                        t.seen = gen;
                    }
                    step = WalkStep::SkipChildren;
                }
            }
            if !matcher.matches(&node.name) {
                return Ok(step);
            }
            if !tracked.contains_key(path) {
                if tracked.len() >= query.limit {
                    truncated = true;
                    return Ok(step);
                }
                let t = Track { kind: node.kind, last: None, seen: gen, versions: Vec::new() };
                tracked.insert(path.to_vec(), t);
            }
            if let Some(t) = tracked.get_mut(path) {
                let change = classify(t.last.as_ref(), Some(node));
                if change != Change::Unchanged {
                    t.versions.push(Version { snapshot: *snap, time, change, node: Some(node.clone()) });
                }
                t.kind = node.kind;
                t.last = Some(node.clone());
                t.seen = gen;
            }
            Ok(step)
        })?;
        for t in tracked.values_mut() {
            if t.seen != gen && t.last.is_some() {
                t.versions.push(Version { snapshot: *snap, time, change: Change::Removed, node: None });
                t.last = None;
            }
        }
        before = now;
    }
    let matches = tracked.into_iter().map(|(path, t)| FindMatch { path, kind: t.kind, versions: t.versions }).collect();
    Ok(FindResult { matches, truncated })
}

/// The prefix of every path below `dir`: `dir/`.
fn under(dir: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    p.push(b'/');
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.
mod tests {
    use super::NameMatcher;

    #[test]
    fn a_pattern_is_a_glob_or_a_substring_and_ignores_case() {
        let glob = NameMatcher::new("*.TXT").unwrap_or_else(|e| panic!("{e}"));
        assert!(glob.matches(b"notes.txt"));
        assert!(!glob.matches(b"notes.txt.bak"));
        let sub = NameMatcher::new("Report").unwrap_or_else(|e| panic!("{e}"));
        assert!(sub.matches(b"q3-report-final.pdf"));
        assert!(!sub.matches(b"summary.pdf"));
        assert!(NameMatcher::new("[").is_err(), "an unclosed class is a bad request, not a panic");
    }
}
