//! Writing one regular file of a restore.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use vger_format::entry::Entry;

use super::attrs::Shared;
use super::dir_handle::DirHandle;
use crate::error::FsError;

/// A regular file about to be restored, its parent directory open: see
/// [`super::RestoreTarget::prepare_file`]. It is `Send`, so the temporary
/// file can be made on the thread that writes it.
pub struct NewFile {
    dir: DirHandle,
    name: Vec<u8>,
    /// The directory was made by this restore: the name is put in place
    /// without replacing anything (see the module docs of `restore`).
    fresh: bool,
    /// The mode to create it with, when that gives it its final owner,
    /// group and mode (see `Shared::preset_mode`).
    preset: Option<u32>,
    disk_path: PathBuf,
    shared: Arc<Shared>,
}

impl NewFile {
    pub(crate) fn new(
        dir: DirHandle,
        name: Vec<u8>,
        fresh: bool,
        preset: Option<u32>,
        disk_path: PathBuf,
        shared: Arc<Shared>,
    ) -> Self {
        NewFile { dir, name, fresh, preset, disk_path, shared }
    }

    /// Creates the file to write, without its final name yet: it is put in
    /// place by [`FileWriter::finish`]. In a folder this restore made it has
    /// no name at all until then (`O_TMPFILE`: no temporary name to make and
    /// rename, nothing left behind by a crash); elsewhere, or where the file
    /// system cannot do that, it has a temporary name.
    pub fn create(self) -> Result<FileWriter, FsError> {
        let NewFile { dir, name, fresh, preset, disk_path, shared } = self;
        let mode = preset.unwrap_or(0o600);
        let io_err = |e| FsError::io(disk_path.clone(), e);
        let unnamed = match fresh && shared.unnamed_files {
            true => dir.create_unnamed_file(mode).map_err(io_err)?,
            false => None,
        };
        let (temp, file) = match unnamed {
            Some(file) => (None, file),
            None => dir.create_temp_file(mode).map(|(temp, file)| (Some(temp), file)).map_err(io_err)?,
        };
        Ok(FileWriter {
            dir,
            temp,
            name,
            file,
            disk_path,
            shared,
            placed: false,
            written_end: 0,
            no_replace: fresh,
            preset: preset.is_some(),
        })
    }
}

/// A file being restored: an unnamed or temporary file in its final
/// directory that [`finish`](FileWriter::finish) names or renames into
/// place. Dropping it without finishing removes the temporary file (an
/// unnamed one goes away when closed). It is `Send`, so files can be
/// written from worker threads.
pub struct FileWriter {
    dir: DirHandle,
    /// The temporary name; `None` for an unnamed (`O_TMPFILE`) file.
    temp: Option<Vec<u8>>,
    name: Vec<u8>,
    file: File,
    /// Final path on disk, for messages.
    disk_path: PathBuf,
    shared: Arc<Shared>,
    placed: bool,
    /// The end of the last bytes written: when it is the file's size, the
    /// size needs no setting (a small file then costs one system call less).
    written_end: u64,
    /// Put in place only where nothing is (`RENAME_NOREPLACE`).
    no_replace: bool,
    /// Made with its final owner, group and mode.
    preset: bool,
}

impl FileWriter {
    /// Writes `data` at `offset`. Runs of zero bytes (in 64 KiB blocks)
    /// are not written: the file is new, so those ranges read as zeros
    /// anyway and stay holes, also inside a chunk that holds some data.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        const BLOCK: usize = 64 << 10;
        let mut start = 0;
        while start < data.len() {
            // Skip zero blocks, then write the following run of data blocks at once.
            let mut pos = start;
            while pos < data.len() && is_all_zero(&data[pos..(pos + BLOCK).min(data.len())]) {
                pos += BLOCK;
            }
            let run_start = pos.min(data.len());
            while pos < data.len() && !is_all_zero(&data[pos..(pos + BLOCK).min(data.len())]) {
                pos += BLOCK;
            }
            let run_end = pos.min(data.len());
            if run_end > run_start {
                self.file.write_all_at(&data[run_start..run_end], offset + run_start as u64)?;
                self.written_end = self.written_end.max(offset + run_end as u64);
            }
            start = run_end.max(start + 1);
        }
        Ok(())
    }

    /// Reads back `buf.len()` bytes written at `offset` (holes read as
    /// zeros), for verifying a file before it is put in place.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Sets the size of the file now (it is set again by `finish`), so
    /// that trailing holes can be read back.
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.file.set_len(size)
    }

    /// Sets the size (trailing holes included), applies `entry`'s owner,
    /// mode, xattrs and times, and renames the file into place, replacing a
    /// file or symlink of that name but never a directory. The name is the
    /// one given to `begin_file`; `entry` supplies only the metadata.
    pub fn finish(mut self, entry: &Entry) -> Result<(), FsError> {
        // The file is new: written up to its size, it has that size.
        let sized = if self.written_end == entry.size { Ok(()) } else { self.file.set_len(entry.size) };
        let done = sized
            .and_then(|()| self.shared.apply_to_new_file(self.file.as_raw_fd(), entry, self.preset))
            .and_then(|()| match (&self.temp, self.no_replace) {
                (None, _) => self.dir.link_unnamed(&self.file, &self.name),
                (Some(temp), true) => self.dir.rename_no_replace(temp, &self.name),
                (Some(temp), false) => self.dir.rename(temp, &self.name),
            });
        match done {
            Ok(()) => {
                self.placed = true;
                Ok(())
            }
            Err(e) if self.no_replace && e.raw_os_error() == Some(libc::EEXIST) => {
                Err(FsError::refused(&entry.path, "another program created this name while restoring (kept as it is)"))
            }
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                Err(FsError::refused(&entry.path, "a directory of that name is in the target"))
            }
            Err(e) => Err(FsError::io(self.disk_path.clone(), e)),
        }
    }

    /// Gives up on this file and removes the temporary file.
    pub fn abort(self) {}
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if let (false, Some(temp)) = (self.placed, &self.temp) {
            let _ = self.dir.unlink(temp);
        }
    }
}

/// A regular file already in the target at an entry's path, open for
/// reading, so that its content can be compared with the snapshot's; see
/// [`super::RestoreTarget::open_existing_file`].
pub struct ExistingFile {
    file: File,
    disk_path: PathBuf,
    shared: Arc<Shared>,
}

impl ExistingFile {
    pub(crate) fn new(file: File, disk_path: PathBuf, shared: Arc<Shared>) -> Self {
        ExistingFile { file, disk_path, shared }
    }

    /// The open file, to read its content.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Keeps the file as it is and gives it `entry`'s owner, mode, xattrs
    /// and times (its content was found equal to the snapshot's).
    pub fn keep(self, entry: &Entry) -> Result<(), FsError> {
        self.shared.apply_to_fd(self.file.as_raw_fd(), entry).map_err(|e| FsError::io(self.disk_path.clone(), e))
    }
}

/// Whether every byte is zero. OR-folding 1 KiB blocks lets the compiler
/// vectorize the loop (about 19 GB/s, against 1 GB/s for a plain
/// `iter().all`) while still stopping early at the first block with data.
pub fn is_all_zero(data: &[u8]) -> bool {
    data.chunks(1024).all(|block| block.iter().fold(0u8, |acc, b| acc | b) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_check() {
        assert!(is_all_zero(&[]));
        assert!(is_all_zero(&[0; 17]));
        assert!(is_all_zero(&vec![0; 1 << 20]));
        for len in [1usize, 15, 16, 17, 1023, 1024, 4096 + 3] {
            for at in [0, len / 2, len - 1] {
                let mut v = vec![0u8; len];
                v[at] = 1;
                assert!(!is_all_zero(&v), "len {len} at {at}");
            }
        }
    }

    #[test]
    fn writer_is_send() {
        fn send<T: Send>() {}
        send::<FileWriter>();
    }
}
