//! What the Snapshots screen shows beside the tree: a search by name
//! across every snapshot, the versions of one file, what changed between
//! two snapshots, and a preview of a file's first KiBs. Each is worked out
//! on a worker through the engine's own APIs (`find`, `diff`, the file
//! reader), the ones `vger snapshot find` / `diff` and `vger mount` use.

use std::io::Read;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use vger_engine::chunk_cache::ChunkCache;
use vger_engine::diff::{Change, DiffSummary};
use vger_engine::file_reader::ChunkSource;
use vger_engine::find::{FindChange, Found};
use vger_engine::repository::Repository;
use vger_engine::snapshots::SnapshotInfo;
use vger_engine::tree::{SnapshotTree, TreeStore};
use vger_format::entry::EntryKind;
use vger_format::tree::TreeEntry;

/// How much of a file a preview reads.
pub const PREVIEW_BYTES: usize = 64 << 10;
/// The largest image a preview decodes (it is read whole).
pub const PREVIEW_IMAGE_BYTES: u64 = 8 << 20;
/// The most matches a search shows.
pub const MAX_FOUND: usize = 500;
/// The most changed paths a comparison lists (the summary counts all).
pub const MAX_DIFF_ITEMS: usize = 2000;

/// One snapshot's version of a path.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    /// The snapshot's position in the screen's list (newest first).
    pub row: usize,
    pub short_id: String,
    pub time: Option<DateTime<Utc>>,
    pub change: FindChange,
    pub size: u64,
}

/// A path a search found, with its versions (newest first).
#[derive(Debug, Clone, PartialEq)]
pub struct FoundRow {
    pub path: Vec<u8>,
    pub versions: Vec<VersionRow>,
}

/// One changed path between two snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    pub path: Vec<u8>,
    pub change: Change,
    pub size_before: Option<u64>,
    pub size_after: Option<u64>,
}

/// What a preview shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    /// Text, and whether the file goes on past what was read.
    Text { text: String, cut: bool },
    /// An RGBA image.
    Image { width: u32, height: u32, rgba: Arc<Vec<u8>> },
    /// Neither text nor an image that can be shown.
    Binary { size: u64, why: String },
}

/// The panel beside the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Details {
    None,
    /// Work in progress: what is being done.
    Working(String),
    Found {
        query: String,
        searched: usize,
        results: Vec<FoundRow>,
        more: bool,
    },
    Versions {
        path: Vec<u8>,
        versions: Vec<VersionRow>,
    },
    Diff {
        older: String,
        newer: String,
        rows: Vec<DiffRow>,
        summary: DiffSummary,
        more: bool,
    },
    Preview {
        path: Vec<u8>,
        short_id: String,
        preview: Preview,
    },
    Failed(String),
}

/// `"a word"` matches names containing it (any case); a pattern with
/// `*`, `?` or `[` is a glob on the name, as `vger snapshot find` reads it.
pub struct NameMatch {
    contains: Option<String>,
    glob: Option<globset::GlobMatcher>,
}

impl NameMatch {
    pub fn new(query: &str) -> Result<Self, String> {
        let query = query.trim();
        if query.is_empty() {
            return Err("Type a name or part of one to search for.".into());
        }
        if query.contains(['*', '?', '[']) {
            let glob = globset::GlobBuilder::new(query)
                .case_insensitive(true)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("`{query}` is not a valid pattern: {e}"))?;
            Ok(NameMatch { contains: None, glob: Some(glob.compile_matcher()) })
        } else {
            Ok(NameMatch { contains: Some(query.to_lowercase()), glob: None })
        }
    }

    pub fn matches(&self, name: &[u8]) -> bool {
        let name = String::from_utf8_lossy(name);
        match (&self.contains, &self.glob) {
            (Some(c), _) => name.to_lowercase().contains(c.as_str()),
            (None, Some(g)) => g.is_match(name.as_ref()),
            (None, None) => false,
        }
    }
}

/// The trees of `infos` (newest first, as listed) oldest first, as the
/// engine's `find` wants them.
fn oldest_first(store: &TreeStore, infos: &[SnapshotInfo]) -> Vec<SnapshotTree> {
    infos.iter().rev().map(|s| SnapshotTree::open(store, s)).collect()
}

/// A found path's versions, newest first, with the screen's row numbers.
fn versions_of(found: &Found, infos: &[SnapshotInfo]) -> Vec<VersionRow> {
    let n = infos.len();
    let mut out: Vec<VersionRow> = found
        .versions
        .iter()
        .filter_map(|v| {
            let row = n.checked_sub(1 + v.snapshot)?;
            let info = infos.get(row)?;
            Some(VersionRow {
                row,
                short_id: vger_engine::snapshots::short_id(&info.id),
                time: DateTime::parse_from_rfc3339(&info.snapshot.time).ok().map(|t| t.with_timezone(&Utc)),
                change: v.change,
                size: v.size,
            })
        })
        .collect();
    out.reverse();
    out
}

/// Every path whose name matches `query` in any snapshot.
pub fn search(store: &TreeStore, infos: &[SnapshotInfo], query: &str) -> Result<Details, String> {
    let matcher = NameMatch::new(query)?;
    let trees = oldest_first(store, infos);
    let found = vger_engine::find::find(&trees, &|_, e: &TreeEntry| matcher.matches(&e.name))
        .map_err(|e| vger_app::one_line(&e))?;
    let more = found.len() > MAX_FOUND;
    let results = found
        .iter()
        .take(MAX_FOUND)
        .map(|f| FoundRow { path: f.path.clone(), versions: versions_of(f, infos) })
        .collect();
    Ok(Details::Found { query: query.trim().to_string(), searched: infos.len(), results, more })
}

/// The versions of `path` across every snapshot.
pub fn versions(store: &TreeStore, infos: &[SnapshotInfo], path: &[u8]) -> Result<Details, String> {
    let trees = oldest_first(store, infos);
    let found = vger_engine::find::find(&trees, &|p, _| p == path).map_err(|e| vger_app::one_line(&e))?;
    let versions = found.first().map(|f| versions_of(f, infos)).unwrap_or_default();
    Ok(Details::Versions { path: path.to_vec(), versions })
}

/// What changed from `older` to `newer` (whole snapshots).
pub fn diff(store: &TreeStore, older: &SnapshotInfo, newer: &SnapshotInfo) -> Result<Details, String> {
    let (a, b) = (SnapshotTree::open(store, older), SnapshotTree::open(store, newer));
    let mut rows = Vec::new();
    let mut summary = DiffSummary::default();
    vger_engine::diff::diff(&a, &b, b"", |item| {
        summary.count(&item);
        if rows.len() < MAX_DIFF_ITEMS {
            let size = |e: &Option<TreeEntry>| e.as_ref().filter(|e| e.kind != EntryKind::Dir).map(|e| e.size);
            rows.push(DiffRow {
                path: item.path.clone(),
                change: item.change,
                size_before: size(&item.before),
                size_after: size(&item.after),
            });
        }
        Ok(())
    })
    .map_err(|e| vger_app::one_line(&e))?;
    let counted = summary.added + summary.removed + summary.modified + summary.metadata + summary.r#type;
    Ok(Details::Diff {
        older: vger_engine::snapshots::short_id(&older.id),
        newer: vger_engine::snapshots::short_id(&newer.id),
        more: counted > rows.len() as u64,
        rows,
        summary,
    })
}

/// Reads the start of file `path` of a snapshot through the engine's file
/// reader (the same verified reads as a restore) and makes a preview.
pub fn preview(repo: &Arc<Repository>, tree: &SnapshotTree, short_id: &str, path: &[u8]) -> Result<Details, String> {
    let entry = tree
        .stat(path)
        .map_err(|e| vger_app::one_line(&e))?
        .ok_or_else(|| format!("{} is not in this snapshot", String::from_utf8_lossy(path)))?;
    if entry.kind != EntryKind::File {
        return Err(format!("{} is not a file", String::from_utf8_lossy(path)));
    }
    let source = ChunkSource::new(repo.clone(), tree.store().index().clone(), Arc::new(ChunkCache::new(16 << 20)));
    let reader = source.open(entry.chunks.clone(), entry.size).map_err(|e| vger_app::one_line(&e))?;
    let image = looks_like_image(path) && entry.size <= PREVIEW_IMAGE_BYTES;
    let limit = if image { entry.size } else { PREVIEW_BYTES as u64 };
    let mut bytes = Vec::new();
    reader.take(limit).read_to_end(&mut bytes).map_err(|e| format!("cannot read the file: {e}"))?;
    let preview = make_preview(&bytes, entry.size);
    Ok(Details::Preview { path: path.to_vec(), short_id: short_id.to_string(), preview })
}

fn looks_like_image(path: &[u8]) -> bool {
    let lower = String::from_utf8_lossy(path).to_lowercase();
    lower.ends_with(".png")
}

/// A preview of `bytes`, the first of a file of `size` bytes.
pub fn make_preview(bytes: &[u8], size: u64) -> Preview {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        if (bytes.len() as u64) < size {
            return Preview::Binary { size, why: "a PNG image too large to preview".into() };
        }
        return match image::load_from_memory_with_format(bytes, image::ImageFormat::Png) {
            Ok(img) => {
                // A preview needs no more than this many pixels a side
                // (thumbnail would also enlarge a smaller one).
                let img = if img.width() > 1024 || img.height() > 1024 { img.thumbnail(1024, 1024) } else { img };
                let img = img.to_rgba8();
                let (width, height) = img.dimensions();
                Preview::Image { width, height, rgba: Arc::new(img.into_raw()) }
            }
            Err(e) => Preview::Binary { size, why: format!("a PNG image that does not decode: {e}") },
        };
    }
    let cut = (bytes.len() as u64) < size;
    // A multi-byte character may be split at the end of what was read.
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => Some(t),
        Err(e) if cut && e.error_len().is_none() => std::str::from_utf8(&bytes[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    match text {
        Some(t) if !t.contains('\0') => Preview::Text { text: t.to_string(), cut },
        _ => Preview::Binary { size, why: "not text".into() },
    }
}

/// `+`, `-`, `M`, `T`, `~` as `vger snapshot diff` prints them, and a word.
pub fn change_mark(c: Change) -> (&'static str, &'static str) {
    match c {
        Change::Added => ("+", "added"),
        Change::Removed => ("-", "removed"),
        Change::Modified => ("M", "modified"),
        Change::Metadata => ("T", "metadata"),
        Change::Type => ("~", "type"),
    }
}

pub fn find_change_name(c: FindChange) -> &'static str {
    match c {
        FindChange::Added => "added",
        FindChange::Modified => "modified",
        FindChange::Metadata => "metadata changed",
        FindChange::Unchanged => "unchanged",
        FindChange::Removed => "removed",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_word_matches_any_case_and_a_pattern_is_a_glob() {
        let m = NameMatch::new("Hello").unwrap();
        assert!(m.matches(b"say-hello.txt"));
        assert!(!m.matches(b"help.txt"));
        let g = NameMatch::new("*.TXT").unwrap();
        assert!(g.matches(b"a.txt"));
        assert!(!g.matches(b"a.txt.bak"));
        assert!(NameMatch::new("  ").is_err());
        assert!(NameMatch::new("[").is_err());
    }

    #[test]
    fn previews_tell_text_images_and_binary_apart() {
        assert_eq!(make_preview(b"hi\n", 3), Preview::Text { text: "hi\n".into(), cut: false });
        // "é" split by the read limit is dropped, not a reason to say binary.
        assert_eq!(make_preview(&[b'a', 0xc3], 10), Preview::Text { text: "a".into(), cut: true });
        assert!(matches!(make_preview(&[0, 1, 2, 0xff], 4), Preview::Binary { .. }));
        let mut png = Vec::new();
        image::RgbaImage::from_pixel(3, 2, image::Rgba([255, 0, 0, 255]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let Preview::Image { width, height, rgba } = make_preview(&png, png.len() as u64) else { panic!() };
        assert_eq!((width, height), (3, 2));
        assert_eq!(&rgba[..4], &[255, 0, 0, 255]);
    }
}
