//! Sealing one queued chunk on a sealer thread (compress, then encrypt).
//!
//! Tests plant a failure here ([`faults::fail_after`]) to show that a chunk
//! that could not be sealed fails the backup instead of leaving a hole in
//! the snapshot; the hook exists only in test builds.

use vger_format::compress::Codec;

use super::chunk_sink::Job;
use crate::blob::{seal_chunk, seal_chunk_in, SEAL_ROOM};
use crate::repository::Repository;
use crate::Result;

/// The sealed envelope of `job`, ready for a pack.
pub(super) fn seal_job(repo: &Repository, codec: Codec, job: Job) -> Result<Vec<u8>> {
    #[cfg(test)]
    faults::check(repo.repository_id())?;
    if job.start == SEAL_ROOM {
        return seal_chunk_in(repo.envelope(), codec, job.ty, &job.id, job.data);
    }
    seal_chunk(repo.envelope(), codec, job.ty, &job.id, job.bytes())
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

    use vger_crypto::ObjectType;
    use vger_format::compress::Codec;
    use vger_format::id::{ChunkId, SNAPSHOTS_PREFIX};
    use vger_fs::{WalkOptions, WalkRoot};

    use crate::backup::chunk_sink::Job;
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

    /// Tree objects are sealed with zstd when the repository's codec is
    /// lz4 (file data keeps lz4), and the tree opens to the same bytes.
    #[test]
    fn tree_objects_are_compressed_with_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(vger_storage::LocalStorage::create(&dir.path().join("repo")).unwrap());
        let opts = InitOptions { kdf: vger_crypto::KdfParams::insecure_fast(), ..InitOptions::default() };
        let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
        assert_eq!(repo.default_compression(), Codec::Lz4);
        let text: Vec<u8> = (0..2000).flat_map(|i| format!("name-{i:05} mode 0644 size {i}\n").into_bytes()).collect();
        let tag_of = |ty: ObjectType| {
            let id = ChunkId(repo.chunk_id_key().chunk_id(&text));
            let sealed = super::seal_job(&repo, Codec::Lz4, Job::owned(id, ty, text.clone())).unwrap();
            let payload = repo.envelope().open(ty, &id.0, sealed).unwrap();
            assert_eq!(vger_format::compress::decompress(&payload, 1 << 20).unwrap(), text);
            payload[0]
        };
        assert_eq!(tag_of(ObjectType::TreeChunk), 2, "a tree object is zstd");
        assert_eq!(tag_of(ObjectType::DataChunk), 1, "file data stays lz4");
        assert_eq!(Codec::None.for_trees(), Codec::None);
        assert_eq!(Codec::Zstd(19).for_trees(), Codec::Zstd(19));
        assert_eq!(Codec::Zstd(1).for_trees(), Codec::Zstd(3));
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
