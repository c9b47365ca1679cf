//! An open directory inside the restore target, and the `*at` system calls
//! made relative to it. Every path handed to these calls is a single name,
//! so the kernel never resolves a symlink we did not mean to follow: a
//! restore cannot be redirected outside the target, not even by a symlink
//! swapped in while it runs.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::path::cstring;

/// Prefix of the names things are created under before being renamed into
/// place.
pub const TEMP_PREFIX: &str = ".vger-restore-";

/// A directory opened with `O_DIRECTORY|O_NOFOLLOW`; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct DirHandle {
    fd: Arc<OwnedFd>,
}

/// Turns a libc return value into an `io::Result`.
fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl DirHandle {
    /// Opens the target itself (the user named it, so symlinks are followed).
    pub fn open(path: &Path) -> io::Result<Self> {
        let c = cstring(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))?;
        // SAFETY: c is a valid NUL-terminated string; the fd returned is ours.
        let fd = check(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) })?;
        Ok(Self::own(fd))
    }

    fn own(fd: RawFd) -> Self {
        // SAFETY: fd was just returned by a successful open and is owned by no one else.
        DirHandle { fd: Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }) }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Opens the subdirectory `name`; fails (ELOOP/ENOTDIR) when it is a
    /// symlink or not a directory.
    pub fn open_child(&self, name: &[u8]) -> io::Result<Self> {
        let c = cstring(name)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid dirfd and NUL-terminated name; the fd returned is ours.
        let fd = check(unsafe { libc::openat(self.raw(), c.as_ptr(), flags) })?;
        Ok(Self::own(fd))
    }

    /// `lstat` of `name`.
    pub fn lstat(&self, name: &[u8]) -> io::Result<libc::stat> {
        let c = cstring(name)?;
        // SAFETY: an all-zero stat is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dirfd, NUL-terminated name and a writable stat.
        check(unsafe { libc::fstatat(self.raw(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
        Ok(st)
    }

    pub fn mkdir(&self, name: &[u8], mode: u32) -> io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: valid dirfd and NUL-terminated name.
        check(unsafe { libc::mkdirat(self.raw(), c.as_ptr(), mode as libc::mode_t) })?;
        Ok(())
    }

    pub fn symlink(&self, target: &[u8], name: &[u8]) -> io::Result<()> {
        let (t, c) = (cstring(target)?, cstring(name)?);
        // SAFETY: valid dirfd and NUL-terminated strings.
        check(unsafe { libc::symlinkat(t.as_ptr(), self.raw(), c.as_ptr()) })?;
        Ok(())
    }

    /// Hard-links `from_dir/from_name` as `name` here, without following a
    /// symlink at `from_name`.
    pub fn link_from(&self, from_dir: &DirHandle, from_name: &[u8], name: &[u8]) -> io::Result<()> {
        let (f, c) = (cstring(from_name)?, cstring(name)?);
        // SAFETY: valid dirfds and NUL-terminated names; flags 0 = no follow.
        check(unsafe { libc::linkat(from_dir.raw(), f.as_ptr(), self.raw(), c.as_ptr(), 0) })?;
        Ok(())
    }

    pub fn mknod(&self, name: &[u8], mode: u32, dev: u64) -> io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: valid dirfd and NUL-terminated name.
        check(unsafe { libc::mknodat(self.raw(), c.as_ptr(), mode as libc::mode_t, dev as libc::dev_t) })?;
        Ok(())
    }

    /// Renames `from` to `to`, both in this directory, replacing a
    /// non-directory at `to` (the kernel refuses to replace a directory
    /// with anything else but a directory).
    pub fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        let (f, t) = (cstring(from)?, cstring(to)?);
        // SAFETY: valid dirfd and NUL-terminated names.
        check(unsafe { libc::renameat(self.raw(), f.as_ptr(), self.raw(), t.as_ptr()) })?;
        Ok(())
    }

    /// Renames `from` to `to`, both in this directory, only when nothing is
    /// at `to` (EEXIST otherwise). Where the file system cannot
    /// (`RENAME_NOREPLACE` refused with EINVAL), `to` is looked up first
    /// and the rename made when it is free.
    pub fn rename_no_replace(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        let (f, t) = (cstring(from)?, cstring(to)?);
        // SAFETY: valid dirfd and NUL-terminated names.
        let rc = unsafe { libc::renameat2(self.raw(), f.as_ptr(), self.raw(), t.as_ptr(), libc::RENAME_NOREPLACE) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
            return Err(e);
        }
        match self.lstat(to) {
            Ok(_) => Err(io::Error::from_raw_os_error(libc::EEXIST)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.rename(from, to),
            Err(e) => Err(e),
        }
    }

    /// Removes the non-directory `name`.
    pub fn unlink(&self, name: &[u8]) -> io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: valid dirfd and NUL-terminated name.
        check(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) })?;
        Ok(())
    }

    /// Removes the empty directory `name` (not a symlink to one).
    pub fn rmdir(&self, name: &[u8]) -> io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: valid dirfd and NUL-terminated name.
        check(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), libc::AT_REMOVEDIR) })?;
        Ok(())
    }

    /// The names in this directory (without `.` and `..`), sorted by bytes.
    pub fn names(&self) -> io::Result<Vec<Vec<u8>>> {
        // A descriptor of its own: `fdopendir` takes it over and reads from
        // its offset, which must not be shared with `self`.
        let dot = cstring(b".")?;
        // SAFETY: valid dirfd and NUL-terminated name; the fd returned is ours.
        let fd = check(unsafe {
            libc::openat(self.raw(), dot.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)
        })?;
        // SAFETY: fd is an open directory we own; on success the stream owns it.
        let stream = unsafe { libc::fdopendir(fd) };
        if stream.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so fd is still ours to close.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        let mut names = Vec::new();
        let result = loop {
            // readdir reports errors only through errno, left unchanged at the end.
            // SAFETY: errno is thread-local.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: stream is a valid, open directory stream.
            let entry = unsafe { libc::readdir64(stream) };
            if entry.is_null() {
                let e = io::Error::last_os_error();
                break if e.raw_os_error().unwrap_or(0) == 0 { Ok(()) } else { Err(e) };
            }
            // SAFETY: a non-null entry holds a NUL-terminated d_name valid until the next readdir.
            let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        };
        // SAFETY: stream is open and closed once (this also closes fd).
        unsafe { libc::closedir(stream) };
        result?;
        names.sort();
        Ok(names)
    }

    /// Opens the regular file `name` for reading: not through a symlink,
    /// and without blocking on a FIFO swapped in; anything but a regular
    /// file is refused with `EINVAL`.
    pub fn open_regular(&self, name: &[u8]) -> io::Result<File> {
        let c = cstring(name)?;
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        // SAFETY: valid dirfd and NUL-terminated name; the fd returned is ours.
        let fd = check(unsafe { libc::openat(self.raw(), c.as_ptr(), flags) })?;
        // SAFETY: fd was just opened and is owned by no one else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        if !file.metadata()?.file_type().is_file() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(file)
    }

    /// Creates a new, empty file under a fresh temporary name, with `mode`
    /// (less the umask).
    pub fn create_temp_file(&self, mode: u32) -> io::Result<(Vec<u8>, File)> {
        self.with_temp_name(|name| {
            let c = cstring(name)?;
            let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            // SAFETY: valid dirfd and NUL-terminated name; the fd returned is ours.
            let fd = check(unsafe { libc::openat(self.raw(), c.as_ptr(), flags, mode as libc::c_uint) })?;
            // SAFETY: fd was just opened and is owned by no one else.
            Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
        })
    }

    /// Creates a new, empty file in this directory that has no name yet
    /// (`O_TMPFILE`), with `mode` (less the umask): it gets one only when
    /// [`link_unnamed`](Self::link_unnamed) gives it one, so a file cut off
    /// half-written (a crash, a kill) leaves nothing behind under any name.
    /// `None` where the file system or kernel cannot make one.
    pub fn create_unnamed_file(&self, mode: u32) -> io::Result<Option<File>> {
        let flags = libc::O_RDWR | libc::O_TMPFILE | libc::O_CLOEXEC;
        // SAFETY: valid dirfd and NUL-terminated name; the fd returned is ours.
        let fd = unsafe { libc::openat(self.raw(), c".".as_ptr(), flags, mode as libc::c_uint) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            // Unsupported: EOPNOTSUPP from the file system, EISDIR or
            // EINVAL from kernels that do not know the flag.
            return match e.raw_os_error() {
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: fd was just opened and is owned by no one else.
        Ok(Some(File::from(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// Gives the unnamed file `file` (from
    /// [`create_unnamed_file`](Self::create_unnamed_file)) the name `name`
    /// here, only when nothing is there (EEXIST otherwise: nothing is ever
    /// replaced).
    pub fn link_unnamed(&self, file: &File, name: &[u8]) -> io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: valid fds and NUL-terminated names.
        let rc = unsafe { libc::linkat(file.as_raw_fd(), c"".as_ptr(), self.raw(), c.as_ptr(), libc::AT_EMPTY_PATH) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // Linking by descriptor needs CAP_DAC_READ_SEARCH on kernels before
        // 6.10 (ENOENT without it); the file's /proc link does the same
        // without it.
        if !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EPERM)) {
            return Err(e);
        }
        let proc = cstring(format!("/proc/self/fd/{}", file.as_raw_fd()).as_bytes())?;
        // SAFETY: valid dirfd and NUL-terminated paths; only the /proc link is followed.
        check(unsafe { libc::linkat(libc::AT_FDCWD, proc.as_ptr(), self.raw(), c.as_ptr(), libc::AT_SYMLINK_FOLLOW) })?;
        Ok(())
    }

    /// Whether an unnamed file made here can be given a name: linking one
    /// needs either a kernel that allows it by descriptor (6.10 on, or
    /// CAP_DAC_READ_SEARCH) or /proc mounted. Tried once per restore, on
    /// the target itself, under a temporary name removed at once.
    pub fn can_link_unnamed(&self) -> bool {
        let Ok(Some(file)) = self.create_unnamed_file(0o600) else { return false };
        let name = temp_name();
        let linked = self.link_unnamed(&file, &name).is_ok();
        if linked {
            let _ = self.unlink(&name);
        }
        linked
    }

    /// Runs `make` with fresh temporary names until one is free (EEXIST
    /// means the name is taken); returns the name used.
    pub fn with_temp_name<T>(&self, mut make: impl FnMut(&[u8]) -> io::Result<T>) -> io::Result<(Vec<u8>, T)> {
        let mut tries = 0;
        loop {
            let name = temp_name();
            match make(&name) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) && tries < 16 => tries += 1,
                Err(e) => return Err(e),
                Ok(v) => return Ok((name, v)),
            }
        }
    }

    /// `lchown` of `name`.
    pub fn chown_at(&self, name: &[u8], uid: u32, gid: u32) -> io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: valid dirfd and NUL-terminated name.
        check(unsafe { libc::fchownat(self.raw(), c.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })?;
        Ok(())
    }

    /// chmod of `name`, which the caller created and knows is no symlink.
    pub fn chmod_at(&self, name: &[u8], mode: u32) -> io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: valid dirfd and NUL-terminated name.
        check(unsafe { libc::fchmodat(self.raw(), c.as_ptr(), mode as libc::mode_t, 0) })?;
        Ok(())
    }

    /// Sets atime and mtime of `name` itself (not a symlink's target).
    pub fn set_mtime_at(&self, name: &[u8], mtime_ns: i64) -> io::Result<()> {
        let c = cstring(name)?;
        let times = [timespec(mtime_ns), timespec(mtime_ns)];
        // SAFETY: valid dirfd, NUL-terminated name and two timespecs.
        check(unsafe { libc::utimensat(self.raw(), c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
        Ok(())
    }

    /// Whether a file or folder made here gets the process's group and the
    /// mode asked for less the umask: no setgid bit, no default ACL. `false`
    /// when that cannot be told.
    pub fn is_plain(&self) -> bool {
        // SAFETY: an all-zero stat is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and a writable stat.
        if unsafe { libc::fstat(self.raw(), &mut st) } != 0 || st.st_mode & libc::S_ISGID != 0 {
            return false;
        }
        let name = c"system.posix_acl_default";
        // SAFETY: valid fd and NUL-terminated name; a null buffer of size 0 asks for the size only.
        let rc = unsafe { libc::fgetxattr(self.raw(), name.as_ptr(), std::ptr::null_mut(), 0) };
        rc < 0 && matches!(io::Error::last_os_error().raw_os_error(), Some(libc::ENODATA | libc::ENOTSUP))
    }

    /// A path naming `name` in this directory through /proc, for calls that
    /// have no `*at` form (`lsetxattr`); only `name` itself is resolved.
    pub fn proc_path(&self, name: &[u8]) -> PathBuf {
        let mut p = PathBuf::from(format!("/proc/self/fd/{}", self.raw()));
        p.push(crate::path::os(name));
        p
    }
}

/// Nanoseconds since the epoch as a timespec (nanoseconds always >= 0).
pub(crate) fn timespec(ns: i64) -> libc::timespec {
    libc::timespec { tv_sec: ns.div_euclid(1_000_000_000) as libc::time_t, tv_nsec: ns.rem_euclid(1_000_000_000) as _ }
}

/// `.vger-restore-` followed by 16 hex digits that no one outside can
/// guess: a counter hashed with keys drawn from the system's random source
/// once per process (no system call per name).
fn temp_name() -> Vec<u8> {
    use std::hash::BuildHasher;
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r = KEYS.get_or_init(std::collections::hash_map::RandomState::new).hash_one(n);
    format!("{TEMP_PREFIX}{r:016x}").into_bytes()
}

/// `fchown`, `fchmod`, `fsetxattr` and `futimens` on an open file or
/// directory.
pub(crate) mod by_fd {
    use super::*;

    pub fn chown(fd: RawFd, uid: u32, gid: u32) -> io::Result<()> {
        // SAFETY: fd is an open descriptor owned by the caller.
        check(unsafe { libc::fchown(fd, uid, gid) })?;
        Ok(())
    }

    pub fn chmod(fd: RawFd, mode: u32) -> io::Result<()> {
        // SAFETY: fd is an open descriptor owned by the caller.
        check(unsafe { libc::fchmod(fd, mode as libc::mode_t) })?;
        Ok(())
    }

    pub fn set_xattr(fd: RawFd, name: &[u8], value: &[u8]) -> io::Result<()> {
        let c: CString = cstring(name)?;
        // SAFETY: fd is open; name is NUL-terminated; value is valid for value.len() bytes.
        check(unsafe { libc::fsetxattr(fd, c.as_ptr(), value.as_ptr().cast(), value.len(), 0) })?;
        Ok(())
    }

    pub fn set_mtime(fd: RawFd, mtime_ns: i64) -> io::Result<()> {
        let times = [timespec(mtime_ns), timespec(mtime_ns)];
        // SAFETY: fd is open; times holds two timespecs.
        check(unsafe { libc::futimens(fd, times.as_ptr()) })?;
        Ok(())
    }
}
