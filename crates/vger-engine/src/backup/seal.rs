//! Sealing one queued chunk on a sealer thread (compress, then encrypt).
//!
//! Tests plant a failure here ([`faults::fail_after`]) to show that a chunk
//! that could not be sealed fails the backup instead of leaving a hole in
//! the snapshot; the hook exists only in test builds.

use vger_format::compress::Codec;

use super::chunk_sink::Job;
use crate::blob::seal_chunk;
use crate::repository::Repository;
use crate::Result;

/// The sealed envelope of `job`, ready for a pack.
pub(super) fn seal_job(repo: &Repository, codec: Codec, job: &Job) -> Result<Vec<u8>> {
    #[cfg(test)]
    faults::check(repo.repository_id())?;
    seal_chunk(repo.envelope(), codec, job.ty, &job.id, &job.data)
}

#[cfg(test)]
pub(crate) mod faults {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use crate::parallel::lock;
    use crate::{EngineError, Result};

    /// Per repository id: how many seals succeed before every later one fails.
    static PLANTED: Mutex<Option<HashMap<[u8; 32], u64>>> = Mutex::new(None);

    /// Makes sealing for repository `id` fail after `ok` more chunks.
    pub(crate) fn fail_after(id: &[u8; 32], ok: u64) {
        lock(&PLANTED).get_or_insert_with(HashMap::new).insert(*id, ok);
    }

    pub(super) fn check(id: &[u8; 32]) -> Result<()> {
        let mut planted = lock(&PLANTED);
        match planted.as_mut().and_then(|m| m.get_mut(id)) {
            Some(0) => Err(EngineError::Other("planted sealing failure".into())),
            Some(left) => {
                *left -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

    use std::sync::Arc;

    use vger_format::id::SNAPSHOTS_PREFIX;
    use vger_fs::{WalkOptions, WalkRoot};

    use crate::backup::{backup, BackupOptions, BackupSource, ChangeDetection};
    use crate::progress::Progress;
    use crate::repository::{InitOptions, Repository};
    use crate::restore::{restore, RestoreOptions};
    use crate::snapshots;

    /// `len` bytes that do not compress, different for each `seed`.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut out = vec![0u8; len];
        blake3::Hasher::new().update(&seed.to_le_bytes()).finalize_xof().fill(&mut out);
        out
    }

    /// A sealer that fails on its fourth chunk fails the backup: no
    /// snapshot is committed. The next backup stores everything and
    /// restores exactly.
    #[test]
    fn a_chunk_that_cannot_be_sealed_fails_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(vger_storage::LocalStorage::create(&dir.path().join("repo")).unwrap());
        let opts = InitOptions {
            kdf: vger_crypto::KdfParams::insecure_fast(),
            chunker: vger_chunker::ChunkerParams { min_size: 16 << 10, avg_size: 64 << 10, max_size: 256 << 10 },
            ..InitOptions::default()
        };
        let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        for i in 0..8 {
            std::fs::write(src.join(format!("f{i}")), noise(300 << 10, i)).unwrap();
        }
        let source = BackupSource {
            label: "src".into(),
            roots: vec![WalkRoot { abs: src.clone(), rel: Vec::new() }],
            paths: vec![src.display().to_string()],
            walk: WalkOptions::default(),
            change_detection: ChangeDetection::Strict,
            dumps: Vec::new(),
        };
        let backup_opts = BackupOptions { threads: 2, ..Default::default() };

        super::faults::fail_after(repo.repository_id(), 3);
        let err = backup(&repo, &source, &backup_opts, &Progress::default()).unwrap_err();
        assert!(err.to_string().contains("planted sealing failure"), "{err}");
        assert!(repo.storage().list(SNAPSHOTS_PREFIX).unwrap().is_empty(), "a snapshot was committed");

        super::faults::fail_after(repo.repository_id(), u64::MAX);
        backup(&repo, &source, &backup_opts, &Progress::default()).unwrap();
        let snap = snapshots::find(&repo, "latest").unwrap();
        let dest = dir.path().join("restored");
        let report = restore(&repo, &snap, &dest, &RestoreOptions::default(), &Progress::default()).unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        for i in 0..8 {
            let name = format!("f{i}");
            assert_eq!(std::fs::read(dest.join(&name)).unwrap(), std::fs::read(src.join(&name)).unwrap(), "{name}");
        }
    }
}
