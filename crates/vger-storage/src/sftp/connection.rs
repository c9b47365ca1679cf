//! One authenticated SSH session with its SFTP channel: connecting with a
//! timeout, refusing unknown or changed host keys, key authentication.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use ssh2::{CheckResult, HashType, KnownHostFileKind, Session, Sftp};

use super::rename::PosixRename;
use crate::StorageError;

/// Everything needed to open another connection to the same server.
#[derive(Debug, Clone)]
pub(super) struct ConnectParams {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// Keys to try in order (the configured one, or the usual defaults).
    pub keys: Vec<PathBuf>,
    pub known_hosts: PathBuf,
    pub timeout: Duration,
}

/// A live session. Fields drop in order: the SFTP channels before the
/// session they belong to.
pub(super) struct Connection {
    pub sftp: Sftp,
    pub posix_rename: PosixRename,
    pub session: Session,
}

fn refused(detail: String) -> StorageError {
    StorageError::Backend { detail }
}

fn home_ssh(file: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
    home.join(".ssh").join(file)
}

/// `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`: the keys `ssh` tries too.
pub(super) fn default_keys() -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"].into_iter().map(home_ssh).collect()
}

pub(super) fn default_known_hosts() -> PathBuf {
    home_ssh("known_hosts")
}

impl Connection {
    pub fn open(params: &ConnectParams) -> Result<Self, StorageError> {
        let server = format!("{}:{}", params.host, params.port);
        let tcp = connect_tcp(&server, &params.host, params.port, params.timeout)?;
        let mut session = Session::new().map_err(|e| refused(format!("SFTP {server}: {e}")))?;
        session.set_tcp_stream(tcp);
        session.set_timeout(u32::try_from(params.timeout.as_millis()).unwrap_or(u32::MAX));
        session
            .handshake()
            .map_err(|e| StorageError::Transient { detail: format!("SSH handshake with {server}: {e}") })?;
        check_host_key(&session, params)?;
        authenticate(&session, params)?;
        let sftp = session.sftp().map_err(|e| StorageError::Transient {
            detail: format!("starting SFTP on {server}: {e} (is the sftp subsystem enabled in sshd_config?)"),
        })?;
        let posix_rename = PosixRename::start(&session)?;
        Ok(Connection { sftp, posix_rename, session })
    }

    /// Replaces `to` by `from` atomically (`posix-rename@openssh.com`).
    pub fn replace(&self, from: &Path, to: &Path) -> Result<(), ssh2::Error> {
        self.posix_rename.rename(&self.session, from, to)
    }
}

fn connect_tcp(server: &str, host: &str, port: u16, timeout: Duration) -> Result<TcpStream, StorageError> {
    let addresses = (host, port)
        .to_socket_addrs()
        .map_err(|e| refused(format!("SFTP server {server}: cannot resolve the host name: {e}")))?;
    let mut last = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    let why = last.map_or_else(|| "no address".to_owned(), |e| e.to_string());
    Err(StorageError::Transient { detail: format!("cannot connect to SFTP server {server}: {why}") })
}

/// Accepts the server only if `known_hosts` has its key for this host and port.
fn check_host_key(session: &Session, params: &ConnectParams) -> Result<(), StorageError> {
    let (host, port, file) = (&params.host, params.port, &params.known_hosts);
    let (key, _) = session.host_key().ok_or_else(|| refused(format!("SFTP server {host}:{port} sent no host key")))?;
    let fingerprint = session
        .host_key_hash(HashType::Sha256)
        .map(|hash| format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)))
        .unwrap_or_default();
    let mut known = session.known_hosts().map_err(|e| refused(format!("reading known hosts: {e}")))?;
    if file.exists() {
        known
            .read_file(file, KnownHostFileKind::OpenSSH)
            .map_err(|e| refused(format!("cannot read known hosts file {}: {e}", file.display())))?;
    }
    let add_hint =
        format!("after verifying the fingerprint, add it with `ssh-keyscan -p {port} {host} >> {}`", file.display());
    match known.check_port(host, port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::NotFound => Err(refused(format!(
            "the host key of SFTP server {host}:{port} ({fingerprint}) is not in {}; {add_hint}",
            file.display()
        ))),
        CheckResult::Mismatch => Err(refused(format!(
            "the host key of SFTP server {host}:{port} CHANGED (now {fingerprint}) and does not match {}: \
             someone may be intercepting the connection. If the change is expected, remove the old entry \
             with `ssh-keygen -R '[{host}]:{port}' -f {}` and {add_hint}",
            file.display(),
            file.display()
        ))),
        CheckResult::Failure => {
            Err(refused(format!("checking the host key of {host}:{port} against {} failed", file.display())))
        }
    }
}

fn authenticate(session: &Session, params: &ConnectParams) -> Result<(), StorageError> {
    let server = format!("{}@{}:{}", params.user, params.host, params.port);
    let mut tried = Vec::new();
    for key in &params.keys {
        // A missing default key is normal; an unreadable one is worth naming.
        if std::fs::File::open(key).and_then(|mut f| f.read(&mut [0u8; 1])).is_err() {
            continue;
        }
        match session.userauth_pubkey_file(&params.user, None, key, None) {
            Ok(()) if session.authenticated() => return Ok(()),
            Ok(()) => tried.push(format!("{} (not accepted)", key.display())),
            Err(e) => tried.push(format!("{} ({})", key.display(), e.message())),
        }
    }
    let keys = params.keys.iter().map(|k| k.display().to_string()).collect::<Vec<_>>().join(", ");
    Err(refused(if tried.is_empty() {
        format!("SFTP {server}: no private key found (looked for {keys}); set sftp_key")
    } else {
        format!(
            "SFTP {server}: key authentication failed with {}; check sftp_key and the server's \
                 authorized_keys (passphrase-protected keys are not supported)",
            tried.join(", ")
        )
    }))
}
