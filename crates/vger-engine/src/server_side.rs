//! Pack work done where the packs are, when the storage offers it
//! ([`Storage::pack_service`](vger_storage::Storage::pack_service):
//! vger-server), so maintenance sends a plan instead of downloading packs.
//!
//! The server has no key. For `compact` it copies sealed blobs verbatim
//! from byte ranges the client names and appends a trailer the client
//! sealed beforehand ([`ServerRepacker`]); for `check` it hashes each pack
//! against the id in its name and checks its framing ([`pack_problems`]).
//! Anything that needs the key (decrypting chunks, `check --verify-data`)
//! stays on the client, and `--distrust-server` does the pack checks here.

use std::collections::HashMap;

use vger_format::id::PackId;
use vger_format::index::{BlobEntry, PackEntry};
use vger_format::pack::{parse_pack, seal_trailer, PACK_END_MAGIC, PACK_FOOTER_LEN, PACK_HEADER_LEN};
use vger_storage::{PackService, RepackBlob};

use crate::lock::{unix_now, RepoLock};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::{EngineError, Result};

/// What is wrong with each damaged pack among `packs` (id, size as
/// listed): asked of `service` when given, otherwise found by downloading
/// each pack once and checking its hash, framing and trailer here.
pub(crate) fn pack_problems(
    repo: &Repository,
    service: Option<&dyn PackService>,
    packs: &[(PackId, u64)],
    progress: &Progress,
) -> Result<Vec<(PackId, String)>> {
    let Some(service) = service else {
        let mut problems = Vec::new();
        for (id, _) in packs {
            progress.stop_if_cancelled()?;
            progress.set_current(&id.storage_key());
            progress.add_files(1);
            let checked = repo.storage().get(&id.storage_key()).map_err(EngineError::from).and_then(|bytes| {
                progress.add_bytes(bytes.len() as u64);
                parse_pack(repo.envelope(), id, &bytes).map_err(EngineError::from)
            });
            if let Err(e) = checked {
                problems.push((*id, e.to_string()));
            }
        }
        return Ok(problems);
    };
    if packs.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = packs.iter().map(|(id, _)| id.storage_key()).collect();
    let mut verdicts: HashMap<PackId, Option<String>> = HashMap::new();
    for v in service.verify_packs(Some(&keys))? {
        if let Some(id) = PackId::from_storage_key(&v.key) {
            let problem = (!v.ok).then(|| v.problem.unwrap_or_else(|| "damaged".into()));
            verdicts.insert(id, problem);
        }
    }
    let mut problems = Vec::new();
    for (id, size) in packs {
        match verdicts.remove(id) {
            Some(None) => {
                progress.add_files(1);
                progress.add_bytes(*size);
            }
            Some(Some(problem)) => problems.push((*id, format!("the server reports: {problem}"))),
            None => problems.push((*id, "the server did not report on it".into())),
        }
    }
    Ok(problems)
}

/// Plans new packs from live blobs of old ones and has the server build
/// each as soon as its plan reaches the pack target size.
pub(crate) struct ServerRepacker<'a> {
    repo: &'a Repository,
    lock: &'a RepoLock,
    service: &'a dyn PackService,
    plan: Vec<RepackBlob>,
    /// The planned pack's blobs with their offsets in the new pack.
    blobs: Vec<BlobEntry>,
    /// Bytes of the planned pack so far: the header and the blobs.
    len: u64,
}

impl<'a> ServerRepacker<'a> {
    pub fn new(repo: &'a Repository, lock: &'a RepoLock, service: &'a dyn PackService) -> Self {
        ServerRepacker { repo, lock, service, plan: Vec::new(), blobs: Vec::new(), len: PACK_HEADER_LEN as u64 }
    }

    /// Plans a copy of `blob` (located in pack `source`); returns the new
    /// pack when this filled one, by size or by the server's cap on the
    /// blobs of one plan.
    pub fn add(&mut self, source: &PackId, blob: &BlobEntry) -> Result<Option<PackEntry>> {
        let length = u64::from(blob.length);
        self.plan.push(RepackBlob { pack: source.to_hex(), offset: blob.offset, length });
        self.blobs.push(BlobEntry { offset: self.len, ..*blob });
        self.len += length;
        if self.len >= self.repo.pack_target_size() || self.plan.len() >= vger_storage::MAX_REPACK_BLOBS {
            return self.build().map(Some);
        }
        Ok(None)
    }

    /// Builds what is still planned, if anything.
    pub fn finish(mut self) -> Result<Option<PackEntry>> {
        if self.blobs.is_empty() {
            return Ok(None);
        }
        self.build().map(Some)
    }

    fn build(&mut self) -> Result<PackEntry> {
        let blobs = std::mem::take(&mut self.blobs);
        let plan = std::mem::take(&mut self.plan);
        let body_len = std::mem::replace(&mut self.len, PACK_HEADER_LEN as u64);
        let trailer = seal_trailer(self.repo.envelope(), blobs.clone())?;
        let size = body_len + trailer.len() as u64 + PACK_FOOTER_LEN as u64;
        self.lock.check_alive()?;
        let reply = self.service.repack(&plan, &trailer)?;
        let id = PackId::from_hex(&reply.id)
            .map_err(|_| server_error(format!("named the new pack `{}`, which is not a pack id", reply.id)))?;
        if reply.size != size {
            return Err(server_error(format!("built a pack of {} bytes, the plan makes {size}", reply.size)));
        }
        // The trailer and footer are where the plan puts them: the server
        // framed the pack as planned (the blobs themselves are checked by
        // `check --verify-data`, which needs the key).
        let mut footer = trailer;
        footer.extend_from_slice(&(footer.len() as u32).to_le_bytes());
        footer.extend_from_slice(PACK_END_MAGIC);
        let stored =
            self.repo.storage().get_range(&id.storage_key(), size - footer.len() as u64, footer.len() as u64)?;
        if stored != footer {
            return Err(server_error(format!("stored pack {} does not end with the trailer sent", id.short())));
        }
        Ok(PackEntry { id, size, blobs, created: unix_now() })
    }
}

fn server_error(what: String) -> EngineError {
    EngineError::Other(format!(
        "server-side repack: the server {what}; nothing was committed (rerun with --distrust-server to repack here)"
    ))
}
