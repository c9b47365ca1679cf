//! Walking the sources of a backup: one stream of entries in tree-stream
//! order (depth first, a directory before its children, children sorted by
//! name bytes), built from `lstat` as it goes.
//!
//! Several roots are merged into one tree. Roots with a `rel` path hang
//! under their ancestors (emitted once each, from the real ancestor
//! directories on disk); roots without one contribute their contents to the
//! top. Only one sorted listing per open directory level is held, never
//! the whole tree.
//!
//! A directory is opened once, relative to its open parent (roots and
//! their ancestors by path), and everything else about it goes through
//! that descriptor: its listing, its xattrs, and the `lstat` of its entries,
//! the opening of its subdirectories and the reading of its symlinks, each
//! relative to it, so the kernel looks up one name instead of every
//! component of the path again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vger_format::entry::{validate_relative_path, Entry, EntryKind};

use crate::error::{FsError, WalkError};
use crate::metadata::{entry_from_stat, Opened, Stat};
use crate::owners::OwnerNames;
use crate::path::join_rel;

/// Decides whether a path is left out: called with the snapshot-relative
/// path and whether it is a directory. An excluded directory is not entered.
pub type ExcludeFn = Arc<dyn Fn(&[u8], bool) -> bool + Send + Sync>;

/// A source to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkRoot {
    /// Where it is on disk.
    pub abs: PathBuf,
    /// Where it goes in the snapshot: empty means "its contents at the top"
    /// (a file or symlink root is then stored under its own file name).
    pub rel: Vec<u8>,
}

#[derive(Clone, Default)]
pub struct WalkOptions {
    /// Do not enter directories on another device than their root.
    pub one_file_system: bool,
    /// Read extended attributes.
    pub xattrs: bool,
    /// With `xattrs`: leave them out of regular files' entries (those the
    /// walk reports as `File` or `Hardlink`); the caller reads them with
    /// [`read_xattrs`](crate::read_xattrs) where it needs them. A backup
    /// takes an unchanged file's from its parent snapshot instead, which
    /// saves a path lookup and a syscall per file.
    pub file_xattrs_later: bool,
    pub exclude: Option<ExcludeFn>,
}

impl std::fmt::Debug for WalkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalkOptions")
            .field("one_file_system", &self.one_file_system)
            .field("xattrs", &self.xattrs)
            .field("file_xattrs_later", &self.file_xattrs_later)
            .field("exclude", &self.exclude.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

/// One path found by the walk: where it is on disk and its entry, with all
/// metadata filled in and no chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkItem {
    pub abs: PathBuf,
    pub entry: Entry,
}

/// Where a node of the root tree takes its own metadata from.
#[derive(Debug)]
enum NodeSource {
    /// A root: `lstat`, as any path inside the tree.
    Root(PathBuf),
    /// A directory above a root: followed with `stat`, it must be a
    /// directory in the snapshot.
    Ancestor(PathBuf),
}

/// A node of the small tree the roots and their ancestors make.
#[derive(Debug, Default)]
struct RootNode {
    /// `None` only for the top of the snapshot.
    source: Option<NodeSource>,
    /// Directories whose contents appear under this node.
    contents: Vec<PathBuf>,
    children: BTreeMap<Vec<u8>, usize>,
}

/// A directory the walk holds open: it is listed through it, and its
/// entries are `lstat`ed, opened (directories) and read (symlinks) relative
/// to it.
type DirFd = Arc<File>;

/// A directory whose listing is read when the walk enters it.
struct DirToEnter {
    rel: Vec<u8>,
    node: Option<usize>,
    dirs: Vec<DirOnDisk>,
}

/// One directory on disk to list when the walk enters a directory.
struct DirOnDisk {
    path: PathBuf,
    /// The device of the root it belongs to.
    root_dev: u64,
    /// Opened when its entry was visited (the entry's xattrs are read
    /// through it; a failure is reported on entering, after the entry), or
    /// `None` (the top): opened by path on entering.
    open: Option<Result<DirFd, WalkError>>,
}

/// The sorted names of one directory on disk.
struct Listing {
    dir: PathBuf,
    /// The directory, open: its names were read from it.
    open: DirFd,
    root_dev: u64,
    names: Vec<OsString>,
    pos: usize,
}

/// One open directory level.
struct Frame {
    rel: Vec<u8>,
    /// Children from the root tree, sorted by name.
    root_children: Vec<(Vec<u8>, usize)>,
    next_root_child: usize,
    listings: Vec<Listing>,
}

/// A name in a directory: from the root tree, from one or more listings on
/// disk, or both.
struct Child {
    name: Vec<u8>,
    node: Option<usize>,
    on_disk: Vec<OnDisk>,
}

/// Where a [`Child`] was listed.
struct OnDisk {
    path: PathBuf,
    /// The device of the root it belongs to.
    root_dev: u64,
    /// The open directory that listed it.
    parent: DirFd,
}

/// The buffer `getdents` fills, as large as glibc's `readdir` uses.
const DIRENT_BUF: usize = 32 * 1024;

/// Iterates over the entries of the roots; see the module docs.
pub struct Walker {
    opts: WalkOptions,
    nodes: Vec<RootNode>,
    stack: Vec<Frame>,
    to_enter: Option<DirToEnter>,
    errors: VecDeque<WalkError>,
    owners: OwnerNames,
    /// (dev, ino) of files with several links -> path of their first name.
    first_links: HashMap<(u64, u64), Vec<u8>>,
    /// Where listings are read, reused for every directory.
    dirent_buf: Vec<MaybeUninit<u8>>,
}

impl Walker {
    pub fn new(roots: Vec<WalkRoot>, opts: WalkOptions) -> Result<Self, FsError> {
        let mut tree = vec![RootNode::default()];
        let mut top_dirs = Vec::new();
        for root in roots {
            let md = match fs::symlink_metadata(&root.abs) {
                Ok(md) => md,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FsError::SourceMissing(root.abs)),
                Err(e) => return Err(FsError::io(root.abs, e)),
            };
            let rel = if !root.rel.is_empty() {
                validate_relative_path(&root.rel)?;
                root.rel
            } else if md.is_dir() {
                top_dirs.push(DirOnDisk { path: root.abs.clone(), root_dev: md.dev(), open: None });
                tree[0].contents.push(root.abs);
                continue;
            } else {
                match root.abs.file_name() {
                    Some(name) => name.as_bytes().to_vec(),
                    None => {
                        let e = io::Error::new(io::ErrorKind::InvalidInput, "a file source needs a file name");
                        return Err(FsError::io(root.abs, e));
                    }
                }
            };
            let components: Vec<&[u8]> = rel.split(|c| *c == b'/').collect();
            let mut at = 0;
            for (i, comp) in components.iter().enumerate() {
                let next = match tree[at].children.get(*comp) {
                    Some(n) => *n,
                    None => {
                        tree.push(RootNode::default());
                        let n = tree.len() - 1;
                        tree[at].children.insert(comp.to_vec(), n);
                        n
                    }
                };
                at = next;
                let up = components.len() - 1 - i;
                if up == 0 {
                    tree[at].source = Some(NodeSource::Root(root.abs.clone()));
                    if md.is_dir() {
                        tree[at].contents.push(root.abs.clone());
                    }
                } else if tree[at].source.is_none() {
                    let dir = root.abs.ancestors().nth(up).unwrap_or(Path::new("/"));
                    tree[at].source = Some(NodeSource::Ancestor(dir.to_path_buf()));
                }
            }
        }
        Ok(Walker {
            opts,
            nodes: tree,
            stack: Vec::new(),
            to_enter: Some(DirToEnter { rel: Vec::new(), node: Some(0), dirs: top_dirs }),
            errors: VecDeque::new(),
            owners: OwnerNames::new(),
            first_links: HashMap::new(),
            dirent_buf: Vec::new(),
        })
    }

    /// Reads the listings of a directory the walk enters and pushes its frame.
    fn enter(&mut self, dir: DirToEnter) {
        let mut listings: Vec<Listing> = Vec::new();
        for d in dir.dirs {
            if listings.iter().any(|l| l.dir == d.path) {
                continue;
            }
            let open = match d.open {
                Some(open) => open,
                None => open_by_path(&d.path).map(Arc::new).map_err(|e| WalkError::new(&d.path, &e)),
            };
            let open = match open {
                Ok(open) => open,
                Err(e) => {
                    self.errors.push_back(e);
                    continue;
                }
            };
            if self.dirent_buf.is_empty() {
                self.dirent_buf = vec![MaybeUninit::uninit(); DIRENT_BUF];
            }
            match read_names(&open, &d.path, &mut self.dirent_buf, &mut self.errors) {
                Ok(names) => listings.push(Listing { dir: d.path, open, root_dev: d.root_dev, names, pos: 0 }),
                Err(e) => self.errors.push_back(WalkError::new(d.path, &e)),
            }
        }
        let root_children = match dir.node.and_then(|n| self.nodes.get(n)) {
            Some(node) => node.children.iter().map(|(name, n)| (name.clone(), *n)).collect(),
            None => Vec::new(),
        };
        self.stack.push(Frame { rel: dir.rel, root_children, next_root_child: 0, listings });
    }

    /// The next name of the innermost open directory, merged over its
    /// listings and root-tree children.
    fn next_child(&mut self) -> Option<Option<Child>> {
        let frame = self.stack.last_mut()?;
        let mut least: Option<&[u8]> = frame.root_children.get(frame.next_root_child).map(|(name, _)| &name[..]);
        for l in &frame.listings {
            if let Some(name) = l.names.get(l.pos) {
                let name = name.as_bytes();
                if least.is_none_or(|m| name < m) {
                    least = Some(name);
                }
            }
        }
        let Some(least) = least else {
            return Some(None);
        };
        let name = least.to_vec();
        let mut node = None;
        if let Some((n, idx)) = frame.root_children.get(frame.next_root_child) {
            if *n == name {
                node = Some(*idx);
                frame.next_root_child += 1;
            }
        }
        let mut on_disk = Vec::new();
        for l in &mut frame.listings {
            if l.names.get(l.pos).is_some_and(|n| n.as_bytes() == name) {
                let path = l.dir.join(OsStr::from_bytes(&name));
                on_disk.push(OnDisk { path, root_dev: l.root_dev, parent: l.open.clone() });
                l.pos += 1;
            }
        }
        Some(Some(Child { name, node, on_disk }))
    }

    /// The item for one child, or `None` when it is excluded or vanished
    /// silently; queues the directory to enter next when it is one.
    fn visit(&mut self, parent_rel: &[u8], mut child: Child) -> Option<Result<WalkItem, WalkError>> {
        let rel = join_rel(parent_rel, &child.name);
        let node = child.node.and_then(|n| self.nodes.get(n));
        let (abs, md, contents, parent) = match node.and_then(|n| n.source.as_ref()) {
            Some(NodeSource::Root(path)) | Some(NodeSource::Ancestor(path)) => {
                let followed = matches!(node.and_then(|n| n.source.as_ref()), Some(NodeSource::Ancestor(_)));
                let md = if followed { fs::metadata(path) } else { fs::symlink_metadata(path) };
                let md = match md {
                    Ok(md) => Stat::of(&md),
                    Err(e) => return Some(Err(WalkError::new(path, &e))),
                };
                (path.clone(), md, node.map(|n| &n.contents[..]).unwrap_or_default(), None)
            }
            None => {
                let first = child.on_disk.first_mut()?;
                let md = match Stat::at(&first.parent, &child.name) {
                    Ok(md) => md,
                    Err(e) => return Some(Err(WalkError::new(&first.path, &e))),
                };
                if let Some(exclude) = &self.opts.exclude {
                    if exclude(&rel, md.is_dir()) {
                        return None;
                    }
                }
                // Only a directory's listings are looked at again (below):
                // anything else gives its path to the item, uncopied.
                let abs = if md.is_dir() { first.path.clone() } else { std::mem::take(&mut first.path) };
                (abs, md, &[][..], Some(first.parent.clone()))
            }
        };
        let mut own_dir = None;
        if md.is_dir() {
            let mut dirs = Vec::new();
            for dir in contents {
                push_dir(&mut dirs, dir, md.dev, || open_by_path(dir));
            }
            for (i, d) in child.on_disk.iter().enumerate() {
                // A name found in several merged directories: the first
                // one's metadata was taken above; the others' are needed only
                // to know whether they are directories to merge as well.
                let dmd = if i == 0 && child.node.is_none() {
                    md
                } else {
                    match Stat::at(&d.parent, &child.name) {
                        Ok(m) => m,
                        Err(_) => continue,
                    }
                };
                let crosses_device = self.opts.one_file_system && dmd.dev != d.root_dev;
                if dmd.is_dir() && !crosses_device {
                    push_dir(&mut dirs, &d.path, d.root_dev, || open_at(&d.parent, &child.name));
                }
            }
            // The directory the entry's metadata came from, when it is
            // listed: its xattrs are read through it.
            own_dir = dirs.iter().find(|d| d.path == abs).and_then(|d| d.open.clone()?.ok());
            self.to_enter = Some(DirToEnter { rel: rel.clone(), node: child.node, dirs });
        }
        let at = Opened { dir: own_dir.as_deref(), parent: parent.as_deref().map(|p| (p, &child.name[..])) };
        Some(self.item(rel, abs, &md, at))
    }

    fn item(&mut self, rel: Vec<u8>, abs: PathBuf, md: &Stat, at: Opened<'_>) -> Result<WalkItem, WalkError> {
        let xattrs = self.opts.xattrs && !(self.opts.file_xattrs_later && md.is_file());
        let mut entry = match entry_from_stat(rel, &abs, md, at, &mut self.owners, xattrs) {
            Ok(e) => e,
            Err(e) => return Err(WalkError::new(abs, &e)),
        };
        if entry.kind == EntryKind::File && md.nlink > 1 {
            match self.first_links.get(&(md.dev, md.ino)) {
                Some(first) => {
                    entry.kind = EntryKind::Hardlink;
                    entry.target = Some(first.clone());
                    // The data is stored once, under the first name.
                    entry.size = 0;
                }
                None => {
                    self.first_links.insert((md.dev, md.ino), entry.path.clone());
                }
            }
        }
        Ok(WalkItem { abs, entry })
    }
}

impl Iterator for Walker {
    type Item = Result<WalkItem, WalkError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(err) = self.errors.pop_front() {
                return Some(Err(err));
            }
            if let Some(dir) = self.to_enter.take() {
                self.enter(dir);
                continue;
            }
            match self.next_child()? {
                None => {
                    self.stack.pop();
                }
                Some(child) => {
                    // Lent to `visit` (which never touches the stack) and
                    // put back: a copy per entry was a visible share of the
                    // walk's time.
                    let parent_rel = self.stack.last_mut().map(|f| std::mem::take(&mut f.rel)).unwrap_or_default();
                    let item = self.visit(&parent_rel, child);
                    if let Some(frame) = self.stack.last_mut() {
                        frame.rel = parent_rel;
                    }
                    if let Some(item) = item {
                        return Some(item);
                    }
                }
            }
        }
    }
}

/// Adds a directory to list to `dirs`, opening it now with `open`. A path
/// already there (overlapping roots) is not opened again: it shares that
/// one's descriptor, or its error, and [`Walker::enter`] lists it once.
fn push_dir(dirs: &mut Vec<DirOnDisk>, path: &Path, root_dev: u64, open: impl FnOnce() -> io::Result<File>) {
    let open = match dirs.iter().find(|d| d.path == path) {
        Some(d) => d.open.clone(),
        None => Some(open().map(Arc::new).map_err(|e| WalkError::new(path, &e))),
    };
    dirs.push(DirOnDisk { path: path.to_path_buf(), root_dev, open });
}

/// Opens a directory to list by path (a root, which has no open parent).
/// `O_DIRECTORY`: never blocks on a FIFO swapped in for it.
fn open_by_path(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(path)
}

/// Opens the directory `name` in the open directory `parent` to list it.
/// `O_NOFOLLOW`: a name swapped for a symlink since its `lstat` fails to
/// open rather than leading the walk elsewhere; `O_DIRECTORY`: never blocks
/// on a FIFO swapped in for it.
fn open_at(parent: &File, name: &[u8]) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::openat(parent, name, flags, Mode::empty())?))
}

/// The names in the open directory `dir` (at `path`), sorted by bytes,
/// without `.` and `..`. An error while reading is reported in `errors`,
/// and the names read before it kept.
///
/// A directory deleted since it was opened is reported as vanished, as it
/// was when it was opened by path on entering: Linux fails `getdents` on it
/// with `ENOENT`, reported like any read error.
fn read_names(
    dir: &File,
    path: &Path,
    buf: &mut [MaybeUninit<u8>],
    errors: &mut VecDeque<WalkError>,
) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    let mut raw = rustix::fs::RawDir::new(dir, buf);
    while let Some(entry) = raw.next() {
        match entry {
            Ok(entry) => {
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    names.push(OsString::from_vec(name.to_vec()));
                }
            }
            Err(e) => {
                errors.push_back(WalkError::new(path, &e.into()));
                return Ok(sorted(names));
            }
        }
    }
    Ok(sorted(names))
}

fn sorted(mut names: Vec<OsString>) -> Vec<OsString> {
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    names
}
