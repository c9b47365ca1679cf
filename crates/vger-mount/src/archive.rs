//! A folder as a `.tar.gz` or `.zip` built while it is sent (the folder's
//! URL with `?download=tar.gz` or `?download=zip`): a walk of the folder
//! feeds the archive writer, which writes into the response as it goes.
//! No temporary file; mtimes, modes and symbolic links are kept.
//!
//! Memory: a tar.gz holds one file's chunk and the compressor's window.
//! A zip must end with a directory of every entry, so its writer keeps a
//! record per entry (name and sizes, a few hundred bytes): folders of more
//! than [`ZIP_MAX_ENTRIES`] are refused up front in favour of tar.gz.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{Datelike, Local, Timelike};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::body::{streamed, BodyWriter};
use crate::layout::{encode_segment, snapshot_name, TreePlace};
use crate::server::Shared;
use crate::store::{Node, NodeKind, SnapshotStore, WalkStep};
use crate::MountError;

/// Entries a zip download may hold (its writer keeps a record of each).
pub const ZIP_MAX_ENTRIES: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    TarGz,
    Zip,
}

pub fn download(st: &Shared, tree: &TreePlace, dir: &Node, format: &str) -> Result<Response, MountError> {
    let format = match format {
        "tar.gz" | "tgz" => Format::TarGz,
        "zip" => Format::Zip,
        other => return Err(MountError::BadRequest(format!("unknown download format `{other}`: use tar.gz or zip"))),
    };
    if format == Format::Zip && tree.path.is_empty() && tree.snapshot.files + tree.snapshot.dirs > ZIP_MAX_ENTRIES {
        return Err(MountError::BadRequest(format!(
            "this snapshot holds more than {ZIP_MAX_ENTRIES} entries, too many for a zip; download it as tar.gz"
        )));
    }
    let top = if tree.path.is_empty() { snapshot_name(&tree.snapshot).into_bytes() } else { dir.name.clone() };
    let ext = if format == Format::Zip { "zip" } else { "tar.gz" };
    let file_name = format!("{}.{ext}", encode_segment(&top));
    let content_type = if format == Format::Zip { "application/zip" } else { "application/gzip" };
    let store = st.store.clone();
    let (snap, root) = (tree.snapshot.id, tree.path.clone());
    let permit = st
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| MountError::Busy("too many downloads at once; try again when one has finished".into()))?;
    let body = streamed(move |out| {
        let _permit = permit;
        let archive = Archive { store: store.as_ref(), snap, root: &root, top: &top };
        match format {
            Format::TarGz => archive.tar_gz(out),
            Format::Zip => archive.zip(out),
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{file_name}"))
                .unwrap_or(HeaderValue::from_static("attachment")),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body::<Body>(body)
        .map_err(|e| MountError::Other(format!("cannot build the response: {e}")))
}

/// A folder of a snapshot being written as an archive.
struct Archive<'a> {
    store: &'a dyn SnapshotStore,
    snap: vger_format::id::SnapshotId,
    /// The folder's snapshot path.
    root: &'a [u8],
    /// The name the archive's entries start with.
    top: &'a [u8],
}

fn io_err(e: MountError) -> io::Error {
    io::Error::other(e.to_string())
}

impl Archive<'_> {
    /// The archive name of a snapshot path below the folder.
    fn name(&self, path: &[u8]) -> Vec<u8> {
        let rel = if self.root.is_empty() { path } else { path.get(self.root.len() + 1..).unwrap_or(path) };
        let mut out = self.top.to_vec();
        out.push(b'/');
        out.extend_from_slice(rel);
        out
    }

    fn stat_root(&self) -> io::Result<Node> {
        self.store
            .stat(&self.snap, self.root)
            .map_err(io_err)?
            .ok_or_else(|| io::Error::other("the folder vanished from its snapshot"))
    }

    /// Calls `f` for the folder itself, then for everything below it.
    fn each(&self, f: &mut dyn FnMut(&[u8], &Node) -> io::Result<()>) -> io::Result<()> {
        let root = self.stat_root()?;
        f(self.top, &root)?;
        let mut failed = None;
        self.store
            .walk(&self.snap, self.root, &mut |path, node| {
                let name = self.name(path);
                match f(&name, node) {
                    Ok(()) => Ok(WalkStep::Continue),
                    Err(e) => {
                        failed = Some(e);
                        Ok(WalkStep::Stop)
                    }
                }
            })
            .map_err(io_err)?;
        failed.map_or(Ok(()), Err)
    }

    fn tar_gz(&self, out: &mut BodyWriter) -> io::Result<()> {
        let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::fast()));
        self.each(&mut |name, node| {
            let mut h = tar::Header::new_gnu();
            h.set_mode(node.mode & 0o7777);
            h.set_mtime(u64::try_from(node.mtime_ns.div_euclid(1_000_000_000)).unwrap_or(0));
            h.set_uid(u64::from(node.uid));
            h.set_gid(u64::from(node.gid));
            if let Some(u) = &node.user {
                let _ = h.set_username(u);
            }
            if let Some(g) = &node.group {
                let _ = h.set_groupname(g);
            }
            let path = Path::new(OsStr::from_bytes(name));
            match node.kind {
                NodeKind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    tar.append_data(&mut h, path, io::empty())
                }
                NodeKind::File => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(node.size);
                    let file = self.store.open(node).map_err(io_err)?;
                    tar.append_data(&mut h, path, ExactReader { inner: file, left: node.size })
                }
                NodeKind::Symlink => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    let target = node.link_target.clone().unwrap_or_default();
                    tar.append_link(&mut h, path, Path::new(OsStr::from_bytes(&target)))
                }
                NodeKind::Special => Ok(()),
            }
        })?;
        tar.into_inner()?.finish()?.flush()
    }

    fn zip(&self, out: &mut BodyWriter) -> io::Result<()> {
        let mut zip = zip::ZipWriter::new_stream(out);
        let mut entries = 0u64;
        let zerr = |e: zip::result::ZipError| io::Error::other(e.to_string());
        self.each(&mut |name, node| {
            entries += 1;
            if entries > ZIP_MAX_ENTRIES {
                return Err(io::Error::other(format!("more than {ZIP_MAX_ENTRIES} entries: download as tar.gz")));
            }
            let name = String::from_utf8_lossy(name).into_owned();
            let secs = node.mtime_ns.div_euclid(1_000_000_000);
            let local = node.mtime().with_timezone(&Local);
            let dos = u16::try_from(local.year())
                .ok()
                .and_then(|y| {
                    let (mo, d) = (local.month() as u8, local.day() as u8);
                    zip::DateTime::from_date_and_time(
                        y,
                        mo,
                        d,
                        local.hour() as u8,
                        local.minute() as u8,
                        local.second() as u8,
                    )
                    .ok()
                })
                .unwrap_or_default();
            let options = zip::write::SimpleFileOptions::default()
                .last_modified_time(dos)
                .unix_permissions(node.mode & 0o7777)
                .compression_method(zip::CompressionMethod::Deflated)
                .compression_level(Some(1))
                .large_file(node.size >= u64::from(u32::MAX))
                .into_full_options()
                .with_extended_timestamp(u32::try_from(secs).ok(), None, None)
                .map_err(zerr)?;
            match node.kind {
                NodeKind::Dir => zip.add_directory(format!("{name}/"), options).map_err(zerr),
                NodeKind::File => {
                    zip.start_file(name, options).map_err(zerr)?;
                    let mut file = self.store.open(node).map_err(io_err)?;
                    let copied = io::copy(&mut file, &mut zip)?;
                    if copied != node.size {
                        return Err(io::Error::other("a file ended before its recorded size"));
                    }
                    Ok(())
                }
                NodeKind::Symlink => {
                    let target = String::from_utf8_lossy(node.link_target.as_deref().unwrap_or_default()).into_owned();
                    zip.add_symlink(name, target, options).map_err(zerr)
                }
                NodeKind::Special => Ok(()),
            }
        })?;
        zip.finish().map_err(zerr)?.flush()
    }
}

/// A reader that yields exactly `left` bytes or fails: tar's header has
/// already promised the size.
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: io::Read> io::Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::other("a file ended before its recorded size"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
