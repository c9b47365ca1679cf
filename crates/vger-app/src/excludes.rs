//! Which paths a backup leaves out: gitignore-style patterns (global
//! `exclude_patterns` and the source's `exclude`), folders holding a marker
//! file (`exclude_if_present`), and with `git_ignore: true` the `.gitignore`
//! files found in the tree.
//!
//! Patterns follow gitignore: no slash = any depth, a slash = anchored at
//! the source root (the snapshot root: for a source with several `paths`,
//! that is `/`, so write `home/me/x` there), a trailing `/` = folders only,
//! `!` re-includes. As in git, nothing inside an excluded folder can be
//! re-included: the walk never enters it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use vger_fs::{ExcludeFn, WalkRoot};

use crate::AppError;

/// Builds a matcher from gitignore lines, rooted at the snapshot root.
pub fn matcher(patterns: &[&str]) -> Result<Gitignore, AppError> {
    let mut builder = GitignoreBuilder::new("/");
    for p in patterns {
        builder.add_line(None, p).map_err(|source| AppError::ExcludePattern { pattern: p.to_string(), source })?;
    }
    builder.build().map_err(AppError::Excludes)
}

fn rooted(rel: &[u8]) -> PathBuf {
    Path::new("/").join(OsStr::from_bytes(rel))
}

/// Whether `rel` itself matches (the walk has already left out anything
/// below an excluded folder).
pub fn matches(m: &Gitignore, rel: &[u8], is_dir: bool) -> bool {
    m.matched(rooted(rel), is_dir).is_ignore()
}

pub struct ExcludeSpec {
    pub patterns: Vec<String>,
    pub markers: Vec<String>,
    pub git_ignore: bool,
}

/// The exclude callback for the walker, or `None` when nothing is excluded.
pub fn build(spec: ExcludeSpec, roots: &[WalkRoot]) -> Result<Option<ExcludeFn>, AppError> {
    if spec.patterns.is_empty() && spec.markers.is_empty() && !spec.git_ignore {
        return Ok(None);
    }
    let patterns: Vec<&str> = spec.patterns.iter().map(|s| s.as_str()).collect();
    let m = matcher(&patterns)?;
    let roots: Vec<(Vec<u8>, PathBuf)> = roots.iter().map(|r| (r.rel.clone(), r.abs.clone())).collect();
    let git = spec.git_ignore.then(|| GitIgnores { roots: roots.clone(), cache: Mutex::new(HashMap::new()) });
    let markers = spec.markers;
    Ok(Some(Arc::new(move |rel: &[u8], is_dir: bool| {
        if matches(&m, rel, is_dir) {
            return true;
        }
        if let Some(g) = &git {
            if g.ignored(rel, is_dir) {
                return true;
            }
        }
        if is_dir && !markers.is_empty() {
            if let Some(abs) = absolute_of(&roots, rel) {
                return markers.iter().any(|mk| abs.join(mk).exists());
            }
        }
        false
    })))
}

/// `.gitignore` files of the tree, read once per folder.
struct GitIgnores {
    roots: Vec<(Vec<u8>, PathBuf)>,
    cache: Mutex<HashMap<Vec<u8>, Option<Arc<Gitignore>>>>,
}

impl GitIgnores {
    /// The deepest `.gitignore` with a verdict for `rel` decides, as in git.
    fn ignored(&self, rel: &[u8], is_dir: bool) -> bool {
        let mut dirs: Vec<&[u8]> = Vec::new();
        let mut d = rel;
        while let Some(i) = d.iter().rposition(|b| *b == b'/') {
            d = &d[..i];
            dirs.push(d);
        }
        dirs.push(&[]);
        for dir in dirs {
            let Some(g) = self.load(dir) else { continue };
            let rest = if dir.is_empty() { rel } else { &rel[dir.len() + 1..] };
            match g.matched(g.path().join(OsStr::from_bytes(rest)), is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }

    fn load(&self, dir: &[u8]) -> Option<Arc<Gitignore>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cache.get(dir) {
            return hit.clone();
        }
        let found = absolute_of(&self.roots, dir).and_then(|abs| {
            let file = abs.join(".gitignore");
            file.is_file().then(|| {
                let (g, _) = Gitignore::new(&file);
                Arc::new(g)
            })
        });
        cache.insert(dir.to_vec(), found.clone());
        found
    }
}

/// The filesystem path of a snapshot-relative path.
pub fn absolute_of(roots: &[(Vec<u8>, PathBuf)], rel: &[u8]) -> Option<PathBuf> {
    for (root_rel, abs) in roots {
        if root_rel.is_empty() {
            return Some(if rel.is_empty() { abs.clone() } else { abs.join(OsStr::from_bytes(rel)) });
        }
        if rel == root_rel.as_slice() {
            return Some(abs.clone());
        }
        if let Some(rest) = rel.strip_prefix(root_rel.as_slice()).and_then(|r| r.strip_prefix(b"/")) {
            return Some(abs.join(OsStr::from_bytes(rest)));
        }
    }
    None
}

#[cfg(test)]
mod tests;
