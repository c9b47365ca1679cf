//! The SFTP backend: one file per object below a directory on an SSH
//! server, through libssh2 (the `ssh2` crate, blocking, like the
//! [`Storage`] trait).
//!
//! - Connections come from a pool ([`pool`]) of authenticated sessions;
//!   the server's host key must be in `known_hosts` ([`connection`]).
//! - `put` writes `<dir>/.tmp-<random>` and renames it over the key with
//!   `posix-rename@openssh.com` ([`rename`]): readers see the old or the
//!   new object, never a part. Servers without that extension get
//!   remove-then-rename, which leaves a moment with no object.
//! - `put_new` renames with plain SFTP v3 `rename`, which fails if the
//!   target exists (OpenSSH implements it with `link(2)`): exactly one of
//!   several racing writers wins.
//! - Dot-names (`.tmp-*`) are never valid keys, so listings skip them.
//!   Directories are made on demand and never removed.

mod connection;
mod pool;
mod rename;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ssh2::{ErrorCode, FileStat, OpenFlags, OpenType};

use crate::keys::{max_object_size, validate_key, validate_prefix, MAX_LISTED_OBJECTS};
use crate::random::random_u64;
use crate::{BackendOptions, ObjectInfo, Storage, StorageError};
use connection::{default_keys, default_known_hosts, ConnectParams, Connection};
use pool::Pool;

// SFTP status codes (draft-ietf-secsh-filexfer-02 and later drafts).
const FX_NO_SUCH_FILE: i32 = 2;
const FX_PERMISSION_DENIED: i32 = 3;
const FX_FAILURE: i32 = 4;
const FX_NO_CONNECTION: i32 = 6;
const FX_CONNECTION_LOST: i32 = 7;
const FX_OP_UNSUPPORTED: i32 = 8;
const FX_NO_SUCH_PATH: i32 = 10;
const FX_FILE_ALREADY_EXISTS: i32 = 11;
const FX_NO_SPACE_ON_FILESYSTEM: i32 = 14;
const FX_QUOTA_EXCEEDED: i32 = 15;

/// The buffer of a `get`'s first read: index segments, snapshots and
/// locks fit, packs take more reads.
const FIRST_READ: usize = 256 << 10;

/// Where a repository lives on an SFTP server, as parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpLocation {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// Absolute, or relative to the login directory (`.` for it).
    pub path: String,
}

/// A repository in a directory on an SFTP server.
pub struct SftpStorage {
    pool: Pool,
    root: PathBuf,
    description: String,
}

impl std::fmt::Debug for SftpStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpStorage").field("location", &self.description).finish_non_exhaustive()
    }
}

/// Maps an SFTP or SSH failure of `op` on `key`. Session-level errors
/// (negative libssh2 codes: socket, timeout, channel) are transient and
/// retire the session.
fn map_error(op: &str, key: &str, err: &ssh2::Error) -> StorageError {
    let detail = format!("SFTP {op} `{key}`: {}", crate::http::clean_text(err.to_string().as_bytes()));
    match err.code() {
        ErrorCode::SFTP(FX_NO_SUCH_FILE | FX_NO_SUCH_PATH) => StorageError::NotFound { key: key.to_owned() },
        ErrorCode::SFTP(FX_FILE_ALREADY_EXISTS) => StorageError::AlreadyExists { key: key.to_owned() },
        ErrorCode::SFTP(FX_PERMISSION_DENIED) => StorageError::PermissionDenied { key: key.to_owned(), detail },
        ErrorCode::SFTP(FX_NO_SPACE_ON_FILESYSTEM) => StorageError::NoSpace { key: key.to_owned(), detail },
        ErrorCode::SFTP(FX_QUOTA_EXCEEDED) => StorageError::QuotaExceeded { detail },
        ErrorCode::SFTP(FX_NO_CONNECTION | FX_CONNECTION_LOST) | ErrorCode::Session(_) => {
            StorageError::Transient { detail }
        }
        ErrorCode::SFTP(_) => StorageError::Backend { detail },
    }
}

/// Reads and writes fail with `io::Error`s that have lost the SFTP code;
/// all but "not found" are treated as a broken channel.
fn map_io(op: &str, key: &str, err: &std::io::Error) -> StorageError {
    match err.kind() {
        std::io::ErrorKind::NotFound => StorageError::NotFound { key: key.to_owned() },
        _ => StorageError::Transient { detail: format!("SFTP {op} `{key}`: {err}") },
    }
}

fn is_failure(err: &ssh2::Error) -> bool {
    matches!(err.code(), ErrorCode::SFTP(FX_FAILURE | FX_FILE_ALREADY_EXISTS))
}

impl SftpStorage {
    /// Connects once (so that a wrong host key, key or path fails here) and
    /// checks the repository directory; `create` makes it if missing.
    pub fn connect(location: &SftpLocation, opts: &BackendOptions, create: bool) -> Result<Self, StorageError> {
        let params = ConnectParams {
            user: location.user.clone(),
            host: location.host.clone(),
            port: location.port,
            keys: opts.sftp_key.clone().map_or_else(default_keys, |key| vec![key]),
            known_hosts: opts.sftp_known_hosts.clone().unwrap_or_else(default_known_hosts),
            timeout: opts.timeout,
        };
        let description =
            format!("sftp://{}@{}:{}/{}", params.user, params.host, params.port, location.path.trim_start_matches('/'));
        let storage =
            SftpStorage { pool: Pool::new(params, opts.connections), root: PathBuf::from(&location.path), description };
        storage.pool.with(|conn| {
            if create {
                storage.make_dirs(conn, &storage.root, "")?;
            }
            match conn.sftp.stat(&storage.root) {
                Ok(stat) if stat.is_dir() => Ok(()),
                Ok(_) => Err(StorageError::Backend { detail: format!("{} is not a directory", storage.description) }),
                Err(e) if map_error("", "", &e).is_not_found() => Err(StorageError::Backend {
                    detail: format!(
                        "repository directory {} does not exist; check the path or run `vger init`",
                        storage.description
                    ),
                }),
                Err(e) => Err(map_error("open repository", "", &e)),
            }
        })?;
        storage.pool.prewarm();
        Ok(storage)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// `mkdir -p dir`: tolerates directories made concurrently by others.
    fn make_dirs(&self, conn: &Connection, dir: &Path, key: &str) -> Result<(), StorageError> {
        match conn.sftp.mkdir(dir, 0o755) {
            Ok(()) => Ok(()),
            Err(e) => match conn.sftp.stat(dir) {
                Ok(stat) if stat.is_dir() => Ok(()),
                Ok(_) => Err(map_error("mkdir", key, &e)),
                Err(_) => match dir.parent() {
                    Some(parent)
                        if parent != dir
                            && !parent.as_os_str().is_empty()
                            && !matches!(
                                map_error("mkdir", key, &e),
                                StorageError::PermissionDenied { .. } | StorageError::Transient { .. }
                            ) =>
                    {
                        self.make_dirs(conn, parent, key)?;
                        conn.sftp.mkdir(dir, 0o755).or_else(|e| match conn.sftp.stat(dir) {
                            Ok(stat) if stat.is_dir() => Ok(()),
                            _ => Err(map_error("mkdir", key, &e)),
                        })
                    }
                    _ => Err(map_error("mkdir", key, &e)),
                },
            },
        }
    }

    /// Writes `data` to a new temporary file next to `key`, making the
    /// directory if needed; returns its path.
    fn write_temp(&self, conn: &Connection, key: &str, data: &[u8]) -> Result<PathBuf, StorageError> {
        let target = self.path(key);
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        let temp = dir.join(format!(".tmp-{:016x}", random_u64()));
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE;
        let mut file = match conn.sftp.open_mode(&temp, flags, 0o644, OpenType::File) {
            Ok(file) => file,
            Err(e) if map_error("", "", &e).is_not_found() => {
                self.make_dirs(conn, &dir, key)?;
                conn.sftp.open_mode(&temp, flags, 0o644, OpenType::File).map_err(|e| map_error("create", key, &e))?
            }
            Err(e) => return Err(map_error("create", key, &e)),
        };
        let written = file.write_all(data).map_err(|e| map_io("write", key, &e)).and_then(|()| {
            // Durable on return where the server can (fsync@openssh.com).
            match file.fsync() {
                Err(e) if !matches!(e.code(), ErrorCode::SFTP(FX_OP_UNSUPPORTED)) => Err(map_error("fsync", key, &e)),
                _ => Ok(()),
            }
        });
        drop(file);
        if let Err(e) = written {
            let _ = conn.sftp.unlink(&temp);
            return Err(e);
        }
        Ok(temp)
    }

    /// An open regular file and its size; a directory is no object.
    fn open_object(&self, conn: &Connection, key: &str) -> Result<(ssh2::File, u64), StorageError> {
        let mut file = conn.sftp.open(self.path(key)).map_err(|e| map_error("open", key, &e))?;
        let stat: FileStat = file.stat().map_err(|e| map_error("stat", key, &e))?;
        if !stat.is_file() {
            return Err(StorageError::NotFound { key: key.to_owned() });
        }
        let size = stat.size.unwrap_or(0);
        // Position explicitly: some servers reject reads on a fresh handle without it.
        file.seek(SeekFrom::Start(0)).map_err(|e| map_io("seek", key, &e))?;
        Ok((file, size))
    }

    fn list_dir(
        &self,
        conn: &Connection,
        rel: &str,
        prefix: &str,
        out: &mut Vec<ObjectInfo>,
    ) -> Result<(), StorageError> {
        let dir = if rel.is_empty() { self.root.clone() } else { self.path(rel) };
        let mut handle = match conn.sftp.opendir(&dir) {
            Ok(handle) => handle,
            Err(e) if map_error("", "", &e).is_not_found() => return Ok(()),
            Err(e) => return Err(map_error("list", rel, &e)),
        };
        // Entry by entry (not `Sftp::readdir`, which collects however many
        // the server sends): a hostile server's endless folder stops here.
        let mut entries = Vec::new();
        loop {
            match handle.readdir() {
                Ok(entry) => entries.push(entry),
                Err(e) if e.code() == ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_FILE) => break,
                Err(e) => return Err(map_error("list", rel, &e)),
            }
            if out.len() + entries.len() > MAX_LISTED_OBJECTS {
                return Err(StorageError::Backend {
                    detail: format!(
                        "SFTP list `{prefix}`: more than {MAX_LISTED_OBJECTS} entries; refused (a broken or hostile server)"
                    ),
                });
            }
        }
        drop(handle);
        for (path, stat) in entries {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let key = if rel.is_empty() { name.to_owned() } else { format!("{rel}/{name}") };
            if validate_key(&key).is_err() {
                continue; // temporary, hidden or foreign
            }
            if stat.is_dir() {
                // Descend only where keys can still match the prefix.
                let below = format!("{key}/");
                if below.starts_with(prefix) || prefix.starts_with(&below) {
                    self.list_dir(conn, &key, prefix, out)?;
                }
            } else if stat.is_file() && key.starts_with(prefix) {
                out.push(ObjectInfo { key, size: stat.size.unwrap_or(0), modified: stat.mtime, writer: None });
            }
        }
        Ok(())
    }
}

impl Storage for SftpStorage {
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        // Open and read, without the stat of `open_object`: one round trip
        // less per object, which counts on a link with latency. Only when
        // the read fails is the path looked at (a directory is no object).
        self.pool.with(|conn| {
            let mut file = conn.sftp.open(self.path(key)).map_err(|e| map_error("open", key, &e))?;
            // Room for a whole small object up front: `read_to_end` on an
            // empty buffer first reads 32 bytes, which costs a round trip
            // of its own; a large first read lets libssh2 ask for all of it
            // at once.
            let mut data = Vec::with_capacity(FIRST_READ);
            let cap = max_object_size(key);
            match (&mut file).take(cap + 1).read_to_end(&mut data) {
                Ok(_) if data.len() as u64 > cap => Err(StorageError::Backend {
                    detail: format!(
                        "SFTP get `{key}`: the object is larger than the {cap} bytes a repository object can be; refused"
                    ),
                }),
                Ok(_) => Ok(data),
                Err(e) => match conn.sftp.stat(&self.path(key)) {
                    Ok(stat) if !stat.is_file() => Err(StorageError::NotFound { key: key.to_owned() }),
                    _ => Err(map_io("read", key, &e)),
                },
            }
        })
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        self.pool.with(|conn| {
            let (mut file, size) = self.open_object(conn, key)?;
            let in_bounds = offset.checked_add(len).is_some_and(|end| end <= size);
            let wanted = usize::try_from(len).ok().filter(|_| in_bounds);
            let Some(wanted) = wanted else {
                return Err(StorageError::RangeOutOfBounds { key: key.to_owned(), offset, len, size });
            };
            let mut data = vec![0; wanted];
            if wanted > 0 {
                file.seek(SeekFrom::Start(offset)).map_err(|e| map_io("seek", key, &e))?;
                file.read_exact(&mut data).map_err(|e| match e.kind() {
                    // Shrunk since the stat: damaged or being replaced.
                    std::io::ErrorKind::UnexpectedEof => {
                        StorageError::RangeOutOfBounds { key: key.to_owned(), offset, len, size }
                    }
                    _ => map_io("read", key, &e),
                })?;
            }
            Ok(data)
        })
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        self.pool.with(|conn| {
            let temp = self.write_temp(conn, key, data)?;
            let target = self.path(key);
            let renamed = match conn.replace(&temp, &target) {
                Err(e)
                    if matches!(
                        e.code(),
                        ErrorCode::SFTP(0 | FX_OP_UNSUPPORTED)
                            | ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_SFTP_PROTOCOL)
                    ) =>
                {
                    // No posix-rename: not atomic, see the module comment.
                    let _ = conn.sftp.unlink(&target);
                    conn.sftp.rename(&temp, &target, None)
                }
                other => other,
            };
            renamed.map_err(|e| {
                let _ = conn.sftp.unlink(&temp);
                map_error("rename into place", key, &e)
            })
        })
    }

    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        // No stat first: the rename refuses an existing target anyway, and
        // `put_new` meeting an existing key is rare (a lost race).
        self.pool.with(|conn| {
            let target = self.path(key);
            let temp = self.write_temp(conn, key, data)?;
            let renamed = conn.sftp.rename(&temp, &target, None);
            if renamed.is_err() {
                let _ = conn.sftp.unlink(&temp);
            }
            match renamed {
                Ok(()) => Ok(()),
                // OpenSSH reports an existing target as a generic failure.
                Err(e) if is_failure(&e) && conn.sftp.stat(&target).is_ok() => {
                    Err(StorageError::AlreadyExists { key: key.to_owned() })
                }
                Err(e) => Err(map_error("create", key, &e)),
            }
        })
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        self.pool.with(|conn| match conn.sftp.unlink(&self.path(key)) {
            Ok(()) => Ok(()),
            Err(e) => match map_error("delete", key, &e) {
                e if e.is_not_found() => Ok(()),
                e => Err(e),
            },
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        validate_prefix(prefix)?;
        // Start in the deepest directory the prefix names in full.
        let start = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        self.pool.with(|conn| {
            let mut out = Vec::new();
            self.list_dir(conn, start, prefix, &mut out)?;
            Ok(out)
        })
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        validate_key(key)?;
        self.pool.with(|conn| match conn.sftp.stat(&self.path(key)) {
            Ok(stat) if stat.is_file() => Ok(Some(stat.size.unwrap_or(0))),
            Ok(_) => Ok(None),
            Err(e) => match map_error("stat", key, &e) {
                e if e.is_not_found() => Ok(None),
                e => Err(e),
            },
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
