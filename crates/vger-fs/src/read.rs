//! Opening files to back them up.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use vger_format::entry::Entry;

/// Files at least this large get the kernel's hint that they are read
/// sequentially; for smaller ones the hint is a system call that changes
/// nothing (the first read asks for the whole file).
const SEQUENTIAL_HINT_MIN: u64 = 4 << 20;

/// Opens a file the walker found, for reading its data: without following a
/// symlink, without updating its atime when the kernel lets us (only the
/// owner or root may ask for that), and with a hint that it is read once
/// from start to end if it is large. Refuses anything that is not a
/// regular file by now (a FIFO put in its place would otherwise block the
/// backup forever). Returns the open file's size too, from the same
/// `fstat` that checks its type: the size to read up to.
pub fn open_for_backup(abs: &Path) -> io::Result<(File, u64)> {
    // O_NONBLOCK keeps open() from blocking on a FIFO; it changes nothing
    // for regular files.
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let file = match OpenOptions::new().read(true).custom_flags(flags | libc::O_NOATIME).open(abs) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            OpenOptions::new().read(true).custom_flags(flags).open(abs)?
        }
        other => other?,
    };
    let md = file.metadata()?;
    if !md.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file any more"));
    }
    if md.len() >= SEQUENTIAL_HINT_MIN {
        // SAFETY: the fd is open for the lifetime of `file`; fadvise only hints.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
        }
    }
    Ok((file, md.len()))
}

/// Reads `file` from its current offset up to `len` bytes (fewer if it
/// ends first) into a buffer of that capacity. `read(2)` writes straight
/// into the buffer's unused capacity: the buffer is not zeroed first, and a
/// file of a few KiB takes one call (`Read::read_to_end` reads at most
/// 8 KiB per call when it has no size hint).
pub fn read_whole(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut data: Vec<u8> = Vec::with_capacity(len);
    while data.len() < len {
        let want = len - data.len();
        if append_from(file, &mut data, want)? == 0 {
            break;
        }
    }
    Ok(data)
}

/// Appends at most `max` bytes read from `file` (at its offset) to `buf`,
/// with one `read(2)` straight into its spare capacity (reserved if short):
/// nothing is zeroed first. Returns how many; 0 at the end of the file.
pub fn append_from(file: &File, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    buf.reserve(max);
    loop {
        let spare = &mut buf.spare_capacity_mut()[..max];
        // SAFETY: the fd is open for the lifetime of `file`; read(2) writes
        // at most `spare.len()` bytes into memory the vector owns, and only
        // the bytes it reports written are counted as initialised below.
        let n = unsafe { libc::read(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: `n` bytes past the old length were just written (n <= spare.len()).
        unsafe { buf.set_len(buf.len() + n as usize) };
        return Ok(n as usize);
    }
}

/// Whether `file` is the object the walker saw for `entry_before` (same
/// device and inode): false when the path was replaced in between.
pub fn same_file(entry_before: &Entry, file: &File) -> io::Result<bool> {
    let md = file.metadata()?;
    Ok(md.dev() == entry_before.dev && md.ino() == entry_before.ino)
}
