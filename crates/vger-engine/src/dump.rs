//! Command dumps: the standard output of a command stored as a file
//! `vger-dumps/NAME` in the snapshot, streamed chunk by chunk (never held
//! whole in memory). A command that exits non-zero or dies by a signal
//! fails the source's snapshot, with the tail of its stderr in the error.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use vger_chunker::ChunkReader;
use vger_format::entry::{ChunkRef, Entry, EntryKind};
use vger_format::id::ChunkId;

use crate::progress::Progress;
use crate::{EngineError, Result};

/// Folder of the snapshot that holds the dumps.
pub const DUMPS_DIR: &str = "vger-dumps";
/// How much of a failing command's stderr the error shows.
const STDERR_TAIL: usize = 2048;

#[derive(Debug, Clone)]
pub struct CommandDumpSpec {
    pub name: String,
    pub command: String,
    /// Variables the command must not inherit (the front end's secrets).
    pub hidden_env: Vec<std::ffi::OsString>,
}

impl CommandDumpSpec {
    pub fn validate(&self) -> Result<()> {
        let bad = self.name.is_empty()
            || self.name.contains('/')
            || self.name == "."
            || self.name == ".."
            || self.name.contains('\0');
        if bad {
            return Err(EngineError::InvalidSetting(format!(
                "command dump name `{}` must be a plain file name (no `/`)",
                self.name
            )));
        }
        Ok(())
    }
}

/// The directory entry that holds the dumps.
pub fn dumps_dir_entry(now_ns: i64) -> Entry {
    let mut e = Entry::new(DUMPS_DIR.as_bytes().to_vec(), EntryKind::Dir);
    e.mode = 0o700;
    e.mtime = now_ns;
    e
}

/// Runs the command and stores its stdout through `store`.
pub fn run_dump(
    spec: &CommandDumpSpec,
    params: vger_chunker::ChunkerParams,
    store: &mut dyn FnMut(&[u8]) -> Result<ChunkId>,
    progress: &Progress,
) -> Result<Entry> {
    spec.validate()?;
    let mut command = Command::new("sh");
    for name in &spec.hidden_env {
        command.env_remove(name);
    }
    let mut child = command
        .arg("-c")
        .arg(&spec.command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| EngineError::io(format!("cannot run command dump `{}`", spec.name), e))?;
    let tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    let stderr_thread = child.stderr.take().map(|mut err| {
        let tail = tail.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = crate::parallel::lock(&tail);
                t.extend_from_slice(&buf[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        })
    });
    let stdout = child.stdout.take().ok_or_else(|| EngineError::Other("no stdout pipe".into()))?;
    progress.set_current(&format!("{DUMPS_DIR}/{}", spec.name));
    let mut reader = ChunkReader::new(stdout, params).map_err(|e| EngineError::InvalidSetting(e.to_string()))?;
    let mut chunks = Vec::new();
    let mut size = 0u64;
    let read_result: Result<()> = (|| {
        while let Some(chunk) =
            reader.next_chunk().map_err(|e| EngineError::io(format!("reading command dump `{}`", spec.name), e))?
        {
            chunks.push(ChunkRef(store(chunk)?, chunk.len() as u32));
            size += chunk.len() as u64;
            progress.add_bytes(chunk.len() as u64);
        }
        Ok(())
    })();
    if read_result.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| EngineError::io(format!("waiting for command dump `{}`", spec.name), e))?;
    if let Some(t) = stderr_thread {
        let _ = t.join();
    }
    read_result?;
    if !status.success() {
        let stderr = String::from_utf8_lossy(&crate::parallel::lock(&tail)).trim().replace('\n', " | ");
        return Err(EngineError::Other(format!(
            "command dump `{}` failed ({status}); nothing of this source was committed; its stderr ends with: {stderr}",
            spec.name
        )));
    }
    let mut e = Entry::new(format!("{DUMPS_DIR}/{}", spec.name).into_bytes(), EntryKind::File);
    e.mode = 0o600;
    e.mtime = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    e.size = size;
    e.chunks = chunks;
    // SAFETY: getuid/getgid cannot fail.
    e.uid = unsafe { libc::getuid() };
    e.gid = unsafe { libc::getgid() };
    Ok(e)
}
