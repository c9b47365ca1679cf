//! `posix-rename@openssh.com`: the one SFTP operation that replaces an
//! existing file atomically. The ssh2 crate does not expose it (its
//! `rename` flags only reach servers speaking SFTP v5+, and OpenSSH speaks
//! v3, where a plain rename refuses an existing target), so this calls the
//! libssh2 function directly on a second SFTP channel of the same session.

use std::ffi::{c_char, c_int};
use std::path::Path;

use ssh2::{ErrorCode, Session};

use crate::StorageError;

extern "C" {
    // In libssh2 >= 1.11, which libssh2-sys builds from its bundled source.
    fn libssh2_sftp_posix_rename_ex(
        sftp: *mut libssh2_sys::LIBSSH2_SFTP,
        source: *const c_char,
        source_len: usize,
        dest: *const c_char,
        dest_len: usize,
    ) -> c_int;
}

/// A raw SFTP channel used only for posix-rename.
pub(super) struct PosixRename {
    channel: *mut libssh2_sys::LIBSSH2_SFTP,
}

// SAFETY: the channel is only used while the session's lock is held (see
// `rename` and `drop`), which serialises every libssh2 call on the session.
unsafe impl Send for PosixRename {}
// SAFETY: as above; `&self` methods take the session lock.
unsafe impl Sync for PosixRename {}

impl PosixRename {
    pub fn start(session: &Session) -> Result<Self, StorageError> {
        let mut raw = session.raw();
        // SAFETY: `raw` is the live, blocking, authenticated session, locked.
        let channel = unsafe { libssh2_sys::libssh2_sftp_init(&mut *raw) };
        if channel.is_null() {
            return Err(StorageError::Transient { detail: "opening a second SFTP channel failed".into() });
        }
        Ok(PosixRename { channel })
    }

    /// Must be called with the session this channel was opened on.
    pub fn rename(&self, session: &Session, from: &Path, to: &Path) -> Result<(), ssh2::Error> {
        use std::os::unix::ffi::OsStrExt;
        let (from, to) = (from.as_os_str().as_bytes(), to.as_os_str().as_bytes());
        let mut raw = session.raw();
        // SAFETY: the session is locked; both buffers outlive the call and
        // their lengths are passed, so no NUL terminator is needed.
        let rc = unsafe {
            libssh2_sftp_posix_rename_ex(self.channel, from.as_ptr().cast(), from.len(), to.as_ptr().cast(), to.len())
        };
        if rc == 0 {
            return Ok(());
        }
        let code = if rc == libssh2_sys::LIBSSH2_ERROR_SFTP_PROTOCOL {
            // SAFETY: the channel is live and the session locked.
            let status = unsafe { libssh2_sys::libssh2_sftp_last_error(self.channel) };
            ErrorCode::SFTP(c_int::try_from(status).unwrap_or(c_int::MAX))
        } else {
            // SAFETY: the session is live and locked.
            ErrorCode::Session(unsafe { libssh2_sys::libssh2_session_last_errno(&mut *raw) })
        };
        Err(ssh2::Error::new(code, "posix-rename@openssh.com failed"))
    }
}

impl Drop for PosixRename {
    fn drop(&mut self) {
        // Called before the session is freed: `Connection` declares this
        // field before `session`. The session's lock is not reachable here,
        // but the connection is owned by one thread while it is dropped.
        // SAFETY: the channel is live and used by no one else.
        unsafe {
            libssh2_sys::libssh2_sftp_shutdown(self.channel);
        }
    }
}
