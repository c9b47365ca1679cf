//! Restoring entries into a target directory, never writing outside it.
//!
//! Every entry path is validated, then its parent directories are opened one
//! component at a time from the target with `O_NOFOLLOW|O_DIRECTORY`, and
//! the final create, link or rename is made relative to that open directory.
//! A symlink in a parent position (from the snapshot or already in the
//! target) is refused, so a hostile snapshot holding `link -> /etc` and then
//! `link/passwd` cannot write to `/etc`.
//!
//! In a directory that was there before, everything but directories is made
//! under a temporary name (`.vger-restore-<random>`) and renamed into place,
//! so an existing file or symlink of the same name is replaced atomically; an
//! existing directory is never replaced. Directory metadata is applied by
//! [`RestoreTarget::finish`], after all children were written.
//!
//! A directory this restore created itself (`mkdir` succeeded) held nothing
//! of anyone else's: in it nothing is looked up before writing, and names are
//! put in place without replacing anything, so that whatever another process
//! may create there meanwhile is still never replaced: a regular file is
//! written as an unnamed file (`O_TMPFILE`) and linked under its name once
//! complete (a file under its final name is never a torn one, and a crash
//! leaves no temporary file); where the file system cannot, under a
//! temporary name renamed with `RENAME_NOREPLACE`. Other things are created
//! under their final name (the call fails on an existing one).

mod attrs;
mod dir_handle;
mod file_writer;
mod remove;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vger_format::entry::{validate_relative_path, Entry, EntryKind};

use crate::error::FsError;
use crate::path::{os, split_last};
use attrs::Shared;
use dir_handle::DirHandle;
pub use dir_handle::TEMP_PREFIX;
pub use file_writer::{is_all_zero, ExistingFile, FileWriter, NewFile};

/// What a restore sets beyond names and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreOptions {
    /// chown to the stored uid/gid (numeric ids).
    pub owners: bool,
    /// Extended attributes, `security.*` ones included.
    pub xattrs: bool,
    /// Create FIFOs and device nodes.
    pub special_files: bool,
    /// Keep the setuid, setgid and sticky bits of the stored mode.
    pub special_bits: bool,
}

impl Default for RestoreOptions {
    /// Exact recreation, as tar does: owners and special files when
    /// running as root (a user cannot make most of them); xattrs and the
    /// setuid, setgid and sticky bits always.
    fn default() -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        RestoreOptions { owners: root, xattrs: true, special_files: root, special_bits: true }
    }
}

/// What [`RestoreTarget::create_special`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialOutcome {
    Created,
    /// Not created, and why (for a warning).
    Skipped(&'static str),
}

/// Counts of what a restore left out without failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Extended attributes the target refused (unsupported or not permitted).
    pub xattrs_skipped: u64,
}

/// What a restore found at an entry's path before writing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    /// A regular file (not a symlink, directory or special file).
    pub regular_file: bool,
    /// A directory (not a symlink to one).
    pub directory: bool,
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
}

/// Whether an entry's directory is one this restore made (`Some`), and
/// then whether it is plain (see `RestoreTarget::fresh`).
type Fresh = Option<bool>;

/// A directory being restored into; see the module docs.
pub struct RestoreTarget {
    dest: PathBuf,
    root: DirHandle,
    shared: Arc<Shared>,
    /// The parent directory opened last, by its snapshot path, and its
    /// value in `fresh`: consecutive entries usually share it.
    last_parent: Option<(Vec<u8>, DirHandle, Fresh)>,
    /// The directories open on the way to the last parent (the target
    /// itself not included), outermost first, each by the length of its
    /// path, a prefix of `chain_path`: the walk comes back to a folder's
    /// files after each of its subfolders, and opens nothing again then.
    chain: Vec<(usize, DirHandle)>,
    chain_path: Vec<u8>,
    /// Directories created, whose metadata `finish` applies.
    dirs: Vec<Entry>,
    /// Snapshot paths of the directories this restore made (`mkdir`
    /// succeeded): nothing was in them but what the restore writes. The
    /// value: whether a file made in it gets the process's group and the
    /// mode asked for less the umask (no setgid bit, no default ACL).
    fresh: HashMap<Vec<u8>, bool>,
    /// Whether missing directories are created (not for a dry run).
    create: bool,
}

impl RestoreTarget {
    /// Opens `dest`, creating it and its parents when missing. It may exist
    /// and hold files already.
    pub fn new(dest: &Path, opts: RestoreOptions) -> Result<Self, FsError> {
        fs::create_dir_all(dest).map_err(|e| FsError::io(dest, e))?;
        let root = DirHandle::open(dest).map_err(|e| FsError::io(dest, e))?;
        let mut shared = Shared::new(opts);
        shared.unnamed_files = root.can_link_unnamed();
        Ok(RestoreTarget {
            dest: dest.to_path_buf(),
            root,
            shared: Arc::new(shared),
            last_parent: None,
            chain: Vec::new(),
            chain_path: Vec::new(),
            dirs: Vec::new(),
            fresh: HashMap::new(),
            create: true,
        })
    }

    /// Opens `dest` only to look at what is there (for a dry run): nothing
    /// is created, and a missing `dest` reads as empty. Use
    /// [`existing`](Self::existing) only.
    pub fn probe(dest: &Path, opts: RestoreOptions) -> Result<Option<Self>, FsError> {
        let root = match DirHandle::open(dest) {
            Ok(root) => root,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FsError::io(dest, e)),
        };
        Ok(Some(RestoreTarget {
            dest: dest.to_path_buf(),
            root,
            shared: Arc::new(Shared::new(opts)),
            last_parent: None,
            chain: Vec::new(),
            chain_path: Vec::new(),
            dirs: Vec::new(),
            fresh: HashMap::new(),
            create: false,
        }))
    }

    /// Drops the directories kept open for the next entries (one of them
    /// may be about to go away).
    fn forget_open_dirs(&mut self) {
        self.last_parent = None;
        self.chain.clear();
    }

    /// Where `rel` is on disk, for messages.
    fn disk_path(&self, rel: &[u8]) -> PathBuf {
        self.dest.join(os(rel))
    }

    /// Opens directory `dir` (a snapshot path, empty for the target itself)
    /// component by component, refusing symlinks and non-directories, and
    /// creating missing components when `create` is set. `for_path` is the
    /// entry this is done for, named in errors.
    fn open_dir(&self, dir: &[u8], for_path: &[u8], create: bool) -> Result<DirHandle, FsError> {
        self.open_dir_from(self.root.clone(), 0, dir, for_path, create)
    }

    /// Like [`open_dir`](Self::open_dir), starting at `start`, the already
    /// open directory `dir[..skip]` (`skip` is 0 or the length of a prefix
    /// of whole components, its `/` excluded).
    fn open_dir_from(
        &self,
        start: DirHandle,
        skip: usize,
        dir: &[u8],
        for_path: &[u8],
        create: bool,
    ) -> Result<DirHandle, FsError> {
        let mut handle = start;
        let rest = match dir.get(skip..) {
            Some(rest) if skip > 0 => rest.strip_prefix(b"/").unwrap_or(rest),
            Some(rest) => rest,
            None => return Ok(handle),
        };
        if rest.is_empty() {
            return Ok(handle);
        }
        let mut end = if skip > 0 { skip + 1 } else { 0 };
        for comp in rest.split(|c| *c == b'/') {
            end += comp.len();
            let prefix = dir.get(..end).unwrap_or(dir);
            end += 1;
            let opened = match handle.open_child(comp) {
                Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => match handle.mkdir(comp, 0o755) {
                    Ok(()) => handle.open_child(comp),
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => handle.open_child(comp),
                    Err(e) => Err(e),
                },
                other => other,
            };
            handle = match opened {
                Ok(h) => h,
                Err(e) => return Err(self.explain_parent(&handle, comp, prefix, for_path, e)),
            };
        }
        Ok(handle)
    }

    /// Why component `comp` (at `prefix`) of a parent path could not be
    /// opened as a directory.
    fn explain_parent(&self, parent: &DirHandle, comp: &[u8], prefix: &[u8], for_path: &[u8], e: io::Error) -> FsError {
        let prefix_s = String::from_utf8_lossy(prefix);
        match parent.lstat(comp) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => FsError::refused(
                for_path,
                format!("parent {prefix_s} is a symlink (it would write outside the target)"),
            ),
            Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFDIR => {
                FsError::refused(for_path, format!("parent {prefix_s} is not a directory"))
            }
            _ => FsError::io(self.disk_path(prefix), e),
        }
    }

    /// Validates `path` and opens its parent directory (creating missing
    /// ones); returns the parent, the last component and whether the parent
    /// is one this restore made (see the module docs).
    fn parent_of<'p>(&mut self, path: &'p [u8]) -> Result<(DirHandle, &'p [u8], Fresh), FsError> {
        validate_relative_path(path)?;
        let (parent, name) = split_last(path);
        if let Some((p, handle, fresh)) = &self.last_parent {
            if p == parent {
                return Ok((handle.clone(), name, *fresh));
            }
        }
        let handle = self.open_by_chain(parent, path)?;
        let fresh = self.fresh.get(parent).copied();
        self.last_parent = Some((parent.to_vec(), handle.clone(), fresh));
        Ok((handle, name, fresh))
    }

    /// Opens directory `dir` like [`open_dir`](Self::open_dir) (creating
    /// missing ones when the target does), starting from the deepest of
    /// the directories open on the way to the last parent that lies on the
    /// way to `dir`, and keeps those opened on the way for the next call.
    fn open_by_chain(&mut self, dir: &[u8], for_path: &[u8]) -> Result<DirHandle, FsError> {
        let on_the_way =
            |len: usize| dir.starts_with(&self.chain_path[..len]) && matches!(dir.get(len), None | Some(b'/'));
        while self.chain.last().is_some_and(|(len, _)| !on_the_way(*len)) {
            self.chain.pop();
        }
        self.chain_path.clear();
        self.chain_path.extend_from_slice(dir);
        let (mut done, mut handle) = match self.chain.last() {
            Some((len, handle)) => (*len, handle.clone()),
            None => (0, self.root.clone()),
        };
        while done < dir.len() {
            let from = if done == 0 { 0 } else { done + 1 };
            let end = dir[from..].iter().position(|c| *c == b'/').map_or(dir.len(), |i| from + i);
            handle = self.open_dir_from(handle, done, &dir[..end], for_path, self.create)?;
            self.chain.push((end, handle.clone()));
            done = end;
        }
        Ok(handle)
    }

    /// Creates directory `entry.path` (fine when a directory is there
    /// already; any other file there is replaced). Its metadata is applied
    /// by [`finish`](Self::finish).
    pub fn create_dir(&mut self, entry: &Entry) -> Result<(), FsError> {
        let (parent, name, fresh) = self.parent_of(&entry.path)?;
        let io_err = |e| FsError::io(self.disk_path(&entry.path), e);
        // Owner-writable while children are restored; the stored mode
        // comes at the end.
        match parent.mkdir(name, 0o700) {
            Ok(()) => {
                // A new folder takes the setgid bit and default ACL of its parent.
                let plain = fresh.unwrap_or_else(|| parent.is_plain());
                self.fresh.insert(entry.path.clone(), plain);
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let st = parent.lstat(name).map_err(io_err)?;
                if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                    parent.unlink(name).map_err(io_err)?;
                    parent.mkdir(name, 0o700).map_err(io_err)?;
                }
            }
            Err(e) => return Err(io_err(e)),
        }
        self.dirs.push(Entry { chunks: Vec::new(), ..entry.clone() });
        Ok(())
    }

    /// What is at `entry.path` in the target now, never following a
    /// symlink (neither in parent positions nor at the name itself);
    /// `None` when nothing is there.
    pub fn existing(&mut self, entry: &Entry) -> Result<Option<Existing>, FsError> {
        let (parent, name, fresh) = match self.parent_of(&entry.path) {
            Err(FsError::Io { source, .. }) if !self.create && source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            // A dry run: a symlink or file in a parent position is replaced
            // by the parent's directory first, so nothing is there below it.
            Err(FsError::Refused { .. }) if !self.create => return Ok(None),
            other => other?,
        };
        if fresh.is_some() {
            return Ok(None); // Made by this restore: nothing of anyone's in it.
        }
        match parent.lstat(name) {
            Ok(st) => Ok(Some(Existing {
                regular_file: st.st_mode & libc::S_IFMT == libc::S_IFREG,
                directory: st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                size: u64::try_from(st.st_size).unwrap_or(0),
                mtime: st.st_mtime.saturating_mul(1_000_000_000).saturating_add(st.st_mtime_nsec),
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(FsError::io(self.disk_path(&entry.path), e)),
        }
    }

    /// The names in directory `dir` of the target (a snapshot path, empty
    /// for the target itself), sorted by bytes; none when it is not there
    /// (a dry run into a folder not made yet). A symlink on the way is
    /// refused, as for writing.
    pub fn names_in(&mut self, dir: &[u8]) -> Result<Vec<Vec<u8>>, FsError> {
        if !dir.is_empty() {
            validate_relative_path(dir)?;
        }
        let handle = match self.open_dir(dir, dir, false) {
            Err(FsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            // A dry run: a symlink or file where the snapshot has this
            // directory would be replaced by an empty one.
            Err(FsError::Refused { .. }) if !self.create => return Ok(Vec::new()),
            other => other?,
        };
        handle.names().map_err(|e| FsError::io(self.disk_path(dir), e))
    }

    /// Removes `path` from the target, with everything in it when it is a
    /// directory, never following a symlink (one is removed as a link);
    /// `removed` is told each path once gone, deepest first. With
    /// `dry_run` nothing is removed and `removed` hears what would be.
    pub fn remove(&mut self, path: &[u8], dry_run: bool, removed: &mut dyn FnMut(&[u8])) -> Result<(), FsError> {
        validate_relative_path(path)?;
        let (parent, name) = split_last(path);
        let handle = self.open_dir(parent, path, false)?;
        // The directory opened last may be the one removed.
        self.forget_open_dirs();
        remove::remove_tree(&handle, name, path, dry_run, removed).map_err(|e| FsError::io(self.disk_path(path), e))
    }

    /// Opens the regular file at `entry.path` for reading, never through a
    /// symlink; `None` when there is none (nothing, or something else).
    pub fn open_existing_file(&mut self, entry: &Entry) -> Result<Option<ExistingFile>, FsError> {
        let (parent, name, _) = match self.parent_of(&entry.path) {
            Err(FsError::Io { source, .. }) if !self.create && source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(FsError::Refused { .. }) if !self.create => return Ok(None),
            other => other?,
        };
        match parent.open_regular(name) {
            Ok(file) => Ok(Some(ExistingFile::new(file, self.disk_path(&entry.path), self.shared.clone()))),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ELOOP | libc::EINVAL)) => Ok(None),
            Err(e) => Err(FsError::io(self.disk_path(&entry.path), e)),
        }
    }

    /// Starts writing regular file `entry.path`: data goes to an unnamed or
    /// temporary file in its directory until [`FileWriter::finish`] puts it
    /// in place.
    pub fn begin_file(&mut self, entry: &Entry) -> Result<FileWriter, FsError> {
        self.prepare_file(entry)?.create()
    }

    /// Opens the parent directory of regular file `entry.path` (refusing a
    /// directory of that name) without creating anything yet:
    /// [`NewFile::create`] makes the file to write, on any thread.
    pub fn prepare_file(&mut self, entry: &Entry) -> Result<NewFile, FsError> {
        let (parent, name, fresh) = self.parent_of(&entry.path)?;
        if fresh.is_none() {
            if let Ok(st) = parent.lstat(name) {
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    return Err(FsError::refused(&entry.path, "a directory of that name is in the target"));
                }
            }
        }
        // In a plain folder a file can be made with its final owner, group
        // and mode: then none of them is set again.
        let preset = fresh.unwrap_or(false).then(|| self.shared.preset_mode(entry)).flatten();
        Ok(NewFile::new(
            parent,
            name.to_vec(),
            fresh.is_some(),
            preset,
            self.disk_path(&entry.path),
            self.shared.clone(),
        ))
    }

    /// Makes something under a temporary name in `parent`, applies `entry`'s
    /// metadata to it when asked, and renames it to `name`; the temporary
    /// name is removed when any step fails. In a directory this restore
    /// made (`fresh`), it is made under `name` itself, which `make` refuses
    /// (EEXIST) when anything is there already.
    fn place(
        &self,
        parent: &DirHandle,
        name: &[u8],
        fresh: bool,
        entry: &Entry,
        metadata: Option<bool>,
        mut make: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), FsError> {
        let io_err = |e| FsError::io(self.disk_path(&entry.path), e);
        let apply =
            |at: &[u8]| metadata.map_or(Ok(()), |is_symlink| self.shared.apply_at(parent, at, entry, is_symlink));
        if fresh {
            return match make(name) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Err(FsError::refused(
                    &entry.path,
                    "another program created this name while restoring (kept as it is)",
                )),
                Err(e) => Err(io_err(e)),
                Ok(()) => apply(name).map_err(|e| {
                    let _ = parent.unlink(name);
                    io_err(e)
                }),
            };
        }
        let (temp, ()) = parent.with_temp_name(make).map_err(io_err)?;
        let done = apply(&temp).and_then(|()| parent.rename(&temp, name));
        if let Err(e) = done {
            let _ = parent.unlink(&temp);
            if e.raw_os_error() == Some(libc::EISDIR) {
                return Err(FsError::refused(&entry.path, "a directory of that name is in the target"));
            }
            return Err(io_err(e));
        }
        Ok(())
    }

    /// Creates symlink `entry.path` with `entry.target` verbatim (it is
    /// never followed, so any target is safe to store).
    pub fn create_symlink(&mut self, entry: &Entry) -> Result<(), FsError> {
        let Some(target) = entry.target.as_deref() else {
            return Err(FsError::refused(&entry.path, "symlink entry has no target"));
        };
        let (parent, name, fresh) = self.parent_of(&entry.path)?;
        self.place(&parent, name, fresh.is_some(), entry, Some(true), |temp| parent.symlink(target, temp))
    }

    /// Links `entry.path` to the file already restored at `entry.target`,
    /// which must be a regular file inside the target (not a symlink).
    pub fn create_hardlink(&mut self, entry: &Entry) -> Result<(), FsError> {
        let Some(target) = entry.target.as_deref() else {
            return Err(FsError::refused(&entry.path, "hard link entry has no target"));
        };
        validate_relative_path(target)?;
        let target_s = String::from_utf8_lossy(target).into_owned();
        let (target_dir, target_name) = split_last(target);
        let from = self.open_dir(target_dir, &entry.path, false)?;
        let st = match from.lstat(target_name) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Err(FsError::refused(&entry.path, format!("hard link target {target_s} was not restored")));
            }
            Err(e) => return Err(FsError::io(self.disk_path(target), e)),
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(FsError::refused(&entry.path, format!("hard link target {target_s} is not a regular file")));
        }
        let (parent, name, fresh) = self.parent_of(&entry.path)?;
        if let Ok(existing) = parent.lstat(name) {
            if existing.st_dev == st.st_dev && existing.st_ino == st.st_ino {
                return Ok(()); // linked already (a restore run again)
            }
        }
        self.place(&parent, name, fresh.is_some(), entry, None, |temp| parent.link_from(&from, target_name, temp))
    }

    /// Creates a FIFO or device node when `special_files` allows it;
    /// sockets are never restored (a socket file is useless without the
    /// process that listened on it).
    pub fn create_special(&mut self, entry: &Entry) -> Result<SpecialOutcome, FsError> {
        let file_type = match entry.kind {
            EntryKind::Fifo => libc::S_IFIFO,
            EntryKind::Char => libc::S_IFCHR,
            EntryKind::Block => libc::S_IFBLK,
            EntryKind::Socket => return Ok(SpecialOutcome::Skipped("sockets are not restored")),
            _ => return Err(FsError::refused(&entry.path, "not a special file")),
        };
        if !self.shared.opts.special_files {
            return Ok(SpecialOutcome::Skipped("special files are restored only when enabled (as root by default)"));
        }
        let (parent, name, fresh) = self.parent_of(&entry.path)?;
        let rdev = if entry.kind == EntryKind::Fifo { 0 } else { entry.rdev };
        self.place(&parent, name, fresh.is_some(), entry, Some(false), |temp| {
            parent.mknod(temp, file_type | 0o600, rdev)
        })?;
        Ok(SpecialOutcome::Created)
    }

    /// Extended attributes refused so far.
    pub fn summary(&self) -> RestoreSummary {
        RestoreSummary { xattrs_skipped: self.shared.xattrs_skipped.load(Ordering::Relaxed) }
    }

    /// Applies the metadata of every directory created (owner, mode,
    /// xattrs, then times), each after all directories below it, so that
    /// setting a directory's times comes after all changes inside it. Call
    /// it after every file writer has finished. Each directory is opened
    /// once, from its nearest ancestor still open. Goes through all
    /// directories and returns the first error.
    pub fn finish(mut self) -> Result<RestoreSummary, FsError> {
        self.forget_open_dirs();
        let mut dirs = std::mem::take(&mut self.dirs);
        // Parents before children, then each is done once its subtree is.
        dirs.sort_by(|a, b| crate::path::cmp_paths(&a.path, &b.path));
        dirs.dedup_by(|a, b| a.path == b.path);
        let mut first_err = None;
        let mut note = |r: Result<(), FsError>| {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        };
        // The open ancestors of the directory at hand, outermost first.
        let mut open: Vec<(usize, Option<DirHandle>)> = Vec::new();
        for i in 0..dirs.len() {
            let path = &dirs[i].path;
            while let Some((j, handle)) = open.pop() {
                let outer = &dirs[j].path;
                if outer.is_empty() || (path.starts_with(outer) && path.get(outer.len()) == Some(&b'/')) {
                    open.push((j, handle));
                    break;
                }
                note(self.apply_dir(&dirs[j], handle));
            }
            let handle = match open.iter().rev().find_map(|(j, h)| h.as_ref().map(|h| (*j, h))) {
                Some((j, from)) => self.open_dir_from(from.clone(), dirs[j].path.len(), path, path, false),
                None => self.open_dir(path, path, false),
            };
            match handle {
                Ok(h) => open.push((i, Some(h))),
                Err(e) => {
                    note(Err(e));
                    open.push((i, None));
                }
            }
        }
        while let Some((j, handle)) = open.pop() {
            note(self.apply_dir(&dirs[j], handle));
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(self.summary()),
        }
    }

    /// Sets `dir`'s metadata through its open handle (`None`: it could not
    /// be opened, which was reported).
    fn apply_dir(&self, dir: &Entry, handle: Option<DirHandle>) -> Result<(), FsError> {
        match handle {
            Some(h) => self.shared.apply_to_fd(h.raw(), dir).map_err(|e| FsError::io(self.disk_path(&dir.path), e)),
            None => Ok(()),
        }
    }
}
