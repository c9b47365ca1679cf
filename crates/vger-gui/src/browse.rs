//! A snapshot's tree as the Snapshots screen shows it: directories are
//! read one at a time when the user opens them (never the whole tree up
//! front), and the user ticks files and folders to restore.
//!
//! The reads themselves run on a worker ([`read_page`]); this model only
//! records what was asked and what came back, so tests drive it without a
//! display or a thread.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use vger_engine::tree::SnapshotTree;
use vger_format::entry::EntryKind;

/// Entries shown per directory read; "Show more" reads the next page.
pub const PAGE: usize = 500;

/// What kind of thing an entry is, as far as the screen cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Dir,
    File,
    Symlink,
    Other,
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// From the snapshot's top, `/`-separated, as the engine names it.
    pub path: Vec<u8>,
    pub name: String,
    pub kind: ItemKind,
    pub size: u64,
    pub mtime: Option<DateTime<Utc>>,
}

/// A page of a directory, as a worker read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// More entries follow the last one.
    pub more: bool,
}

/// A directory's listing so far.
#[derive(Debug, Clone, PartialEq)]
pub enum DirState {
    Loading,
    Loaded(Page),
    Failed(String),
}

/// A line of the tree as drawn, top to bottom.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    Entry {
        depth: usize,
        item: &'a Item,
        expanded: bool,
        /// Ticked itself.
        selected: bool,
        /// Inside a ticked folder (restored with it).
        implied: bool,
    },
    /// "Reading…" or an error under an opened folder.
    Note { depth: usize, text: String },
    /// The folder has more entries than were read.
    More { depth: usize, dir: &'a [u8] },
}

/// The browsable tree of one snapshot.
#[derive(Debug, Default)]
pub struct Browser {
    pub dirs: HashMap<Vec<u8>, DirState>,
    pub expanded: BTreeSet<Vec<u8>>,
    pub selected: BTreeSet<Vec<u8>>,
    /// Directory reads asked for so far (tests check that browsing is lazy).
    pub reads: u64,
}

/// A read the browser wants a worker to make: the directory, and the
/// name after which to continue (a next page), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub dir: Vec<u8>,
    pub after: Option<Vec<u8>>,
}

impl Browser {
    /// A browser that reads the top directory first.
    pub fn new() -> (Self, ReadRequest) {
        let mut b = Browser::default();
        b.dirs.insert(Vec::new(), DirState::Loading);
        b.reads = 1;
        (b, ReadRequest { dir: Vec::new(), after: None })
    }

    /// Opens or closes a folder; returns a read when it was never read.
    pub fn toggle_open(&mut self, dir: &[u8]) -> Option<ReadRequest> {
        if self.expanded.remove(dir) {
            return None;
        }
        self.expanded.insert(dir.to_vec());
        match self.dirs.get(dir) {
            Some(DirState::Loading | DirState::Loaded(_)) => None,
            Some(DirState::Failed(_)) | None => {
                self.dirs.insert(dir.to_vec(), DirState::Loading);
                self.reads += 1;
                Some(ReadRequest { dir: dir.to_vec(), after: None })
            }
        }
    }

    /// Asks for the page after the last entry shown of `dir`.
    pub fn more(&mut self, dir: &[u8]) -> Option<ReadRequest> {
        let Some(DirState::Loaded(page)) = self.dirs.get(dir) else { return None };
        let last = page.items.last()?;
        let name = last.path.rsplit(|b| *b == b'/').next().unwrap_or(&last.path).to_vec();
        self.reads += 1;
        Some(ReadRequest { dir: dir.to_vec(), after: Some(name) })
    }

    /// What a worker read for `request`.
    pub fn loaded(&mut self, request: &ReadRequest, result: Result<Page, String>) {
        let state = match (result, request.after.is_some(), self.dirs.remove(&request.dir)) {
            (Ok(mut page), true, Some(DirState::Loaded(mut before))) => {
                before.items.append(&mut page.items);
                before.more = page.more;
                DirState::Loaded(before)
            }
            (Ok(page), _, _) => DirState::Loaded(page),
            (Err(e), _, _) => DirState::Failed(e),
        };
        self.dirs.insert(request.dir.clone(), state);
    }

    /// Ticks or unticks `path`. Inside a ticked folder nothing changes:
    /// the folder brings everything below it.
    pub fn toggle_selected(&mut self, path: &[u8]) {
        if self.inside_selected(path) {
            return;
        }
        if !self.selected.remove(path) {
            // A ticked folder covers what was ticked below it.
            self.selected.retain(|p| !is_below(p, path));
            self.selected.insert(path.to_vec());
        }
    }

    /// Whether a folder above `path` is ticked.
    pub fn inside_selected(&self, path: &[u8]) -> bool {
        self.selected.iter().any(|p| is_below(path, p))
    }

    /// The tree as drawn: every entry of every opened folder.
    pub fn lines(&self) -> Vec<Line<'_>> {
        let mut out = Vec::new();
        self.push_lines(&[], 0, &mut out);
        out
    }

    fn push_lines<'a>(&'a self, dir: &[u8], depth: usize, out: &mut Vec<Line<'a>>) {
        match self.dirs.get(dir) {
            None => {}
            Some(DirState::Loading) => out.push(Line::Note { depth, text: "Reading…".into() }),
            Some(DirState::Failed(e)) => out.push(Line::Note { depth, text: format!("Cannot read this folder: {e}") }),
            Some(DirState::Loaded(page)) => {
                if page.items.is_empty() {
                    out.push(Line::Note { depth, text: "(empty folder)".into() });
                }
                for item in &page.items {
                    let expanded = item.kind == ItemKind::Dir && self.expanded.contains(&item.path);
                    out.push(Line::Entry {
                        depth,
                        item,
                        expanded,
                        selected: self.selected.contains(&item.path),
                        implied: self.inside_selected(&item.path),
                    });
                    if expanded {
                        self.push_lines(&item.path, depth + 1, out);
                    }
                }
                if page.more {
                    if let Some((key, _)) = self.dirs.get_key_value(dir) {
                        out.push(Line::More { depth, dir: key });
                    }
                }
            }
        }
    }
}

/// `path` lies strictly below folder `dir`.
pub fn is_below(path: &[u8], dir: &[u8]) -> bool {
    if dir.is_empty() {
        return !path.is_empty();
    }
    path.len() > dir.len() && path.starts_with(dir) && path.get(dir.len()) == Some(&b'/')
}

/// Reads one page of `request.dir` (on a worker thread).
pub fn read_page(tree: &SnapshotTree, request: &ReadRequest) -> Result<Page, String> {
    let entries = match &request.after {
        Some(after) => tree.read_dir_after(&request.dir, after),
        None => tree.read_dir(&request.dir),
    };
    let mut entries = entries.map_err(|e| vger_app::one_line(&e))?;
    let mut items = Vec::new();
    for entry in entries.by_ref() {
        let entry = entry.map_err(|e| vger_app::one_line(&e))?;
        let mut path = request.dir.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&entry.name);
        let kind = match entry.kind {
            EntryKind::Dir => ItemKind::Dir,
            EntryKind::File | EntryKind::Hardlink => ItemKind::File,
            EntryKind::Symlink => ItemKind::Symlink,
            _ => ItemKind::Other,
        };
        let mtime = (entry.mtime != 0).then(|| DateTime::from_timestamp_nanos(entry.mtime));
        items.push(Item {
            path,
            name: String::from_utf8_lossy(&entry.name).into_owned(),
            kind,
            size: entry.size,
            mtime,
        });
        if items.len() == PAGE {
            break;
        }
    }
    let more = items.len() == PAGE && entries.next().is_some();
    Ok(Page { items, more })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn item(path: &str, kind: ItemKind) -> Item {
        Item {
            path: path.as_bytes().to_vec(),
            name: path.rsplit('/').next().unwrap().into(),
            kind,
            size: 1,
            mtime: None,
        }
    }

    fn page(items: Vec<Item>) -> Result<Page, String> {
        Ok(Page { items, more: false })
    }

    fn names(b: &Browser) -> Vec<String> {
        b.lines()
            .iter()
            .map(|l| match l {
                Line::Entry { depth, item, .. } => format!("{}{}", "  ".repeat(*depth), item.name),
                Line::Note { depth, text } => format!("{}{}", "  ".repeat(*depth), text),
                Line::More { .. } => "more".into(),
            })
            .collect()
    }

    #[test]
    fn folders_are_read_when_opened_and_once() {
        let (mut b, top) = Browser::new();
        assert_eq!(names(&b), ["Reading…"]);
        b.loaded(&top, page(vec![item("docs", ItemKind::Dir), item("a.txt", ItemKind::File)]));
        assert_eq!(names(&b), ["docs", "a.txt"]);
        let read = b.toggle_open(b"docs").unwrap();
        assert_eq!(read, ReadRequest { dir: b"docs".to_vec(), after: None });
        assert_eq!(names(&b), ["docs", "  Reading…", "a.txt"]);
        b.loaded(&read, page(vec![item("docs/b", ItemKind::File)]));
        assert_eq!(names(&b), ["docs", "  b", "a.txt"]);
        assert_eq!(b.toggle_open(b"docs"), None, "closing reads nothing");
        assert_eq!(names(&b), ["docs", "a.txt"]);
        assert_eq!(b.toggle_open(b"docs"), None, "reopening uses what was read");
        assert_eq!(b.reads, 2);
    }

    #[test]
    fn a_failed_read_shows_its_error_and_is_retried_on_reopening() {
        let (mut b, top) = Browser::new();
        b.loaded(&top, page(vec![item("d", ItemKind::Dir)]));
        let read = b.toggle_open(b"d").unwrap();
        b.loaded(&read, Err("pack 12ab is missing".into()));
        assert_eq!(names(&b), ["d", "  Cannot read this folder: pack 12ab is missing"]);
        b.toggle_open(b"d");
        assert!(b.toggle_open(b"d").is_some());
    }

    #[test]
    fn a_ticked_folder_brings_what_is_below_it() {
        let mut b = Browser::default();
        b.toggle_selected(b"docs/deep/x");
        b.toggle_selected(b"docs");
        assert_eq!(b.selected.iter().cloned().collect::<Vec<_>>(), [b"docs".to_vec()]);
        assert!(b.inside_selected(b"docs/deep"));
        assert!(!b.inside_selected(b"docs"));
        assert!(!b.inside_selected(b"docsx"));
        b.toggle_selected(b"docs/deep");
        assert_eq!(b.selected.len(), 1, "inside a ticked folder nothing changes");
        b.toggle_selected(b"docs");
        assert!(b.selected.is_empty());
    }

    #[test]
    fn a_large_folder_is_shown_a_page_at_a_time() {
        let (mut b, top) = Browser::new();
        b.loaded(&top, Ok(Page { items: vec![item("a", ItemKind::File)], more: true }));
        assert_eq!(names(&b), ["a", "more"]);
        let next = b.more(b"").unwrap();
        assert_eq!(next.after.as_deref(), Some(&b"a"[..]));
        b.loaded(&next, page(vec![item("b", ItemKind::File)]));
        assert_eq!(names(&b), ["a", "b"]);
    }
}
