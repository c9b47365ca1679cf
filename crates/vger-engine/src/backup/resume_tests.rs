#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write as _};

use vger_crypto::{Algorithm, MasterKey};
use vger_format::id::{ChunkId, PackId, SegmentId};
use vger_format::index::{BlobEntry, IndexSegment, PackEntry, INDEX_SEGMENT_VERSION};

use super::*;

fn envelope(seed: u8) -> Arc<Envelope> {
    Arc::new(Envelope::new(Algorithm::Aes256Gcm, &MasterKey::from_bytes([seed; 96])).unwrap())
}

fn binding() -> Binding {
    Binding {
        repository: "ab".repeat(32),
        source_label: "home".into(),
        hostname: "laptop".into(),
        paths: vec!["/home/me".into()],
    }
}

fn chunk(n: u8) -> ChunkRef {
    ChunkRef(ChunkId([n; 32]), 100)
}

/// An index holding chunks `ids`.
fn index_of(ids: &[u8]) -> ChunkIndex {
    let blobs = ids
        .iter()
        .enumerate()
        .map(|(i, n)| BlobEntry {
            id: ChunkId([*n; 32]),
            blob_type: 1,
            offset: i as u64 * 200,
            length: 150,
            raw_length: 100,
        })
        .collect();
    let pack = PackEntry { id: PackId([7; 32]), size: 1 << 20, blobs, created: 0 };
    let segment = IndexSegment { version: INDEX_SEGMENT_VERSION, packs: vec![pack], supersedes: Vec::new() };
    ChunkIndex::from_segments(&[(SegmentId([1; 32]), segment)])
}

const SECOND: i64 = 1_000_000_000;
const READ_AT: i64 = 1_700_000_000 * SECOND;

/// A file entry as the walk produces it (no chunks yet).
fn walked(path: &str, size: u64) -> Entry {
    let mut e = Entry::new(path.as_bytes().to_vec(), EntryKind::File);
    e.size = size;
    e.mtime = READ_AT - 10 * SECOND;
    e.ctime = READ_AT - 10 * SECOND;
    e.ino = 42;
    e.uid = 1000;
    e
}

fn read(path: &str, chunks: &[u8]) -> Entry {
    let mut e = walked(path, 100 * chunks.len() as u64);
    e.chunks = chunks.iter().map(|n| chunk(*n)).collect();
    e
}

/// Whether the journals in `dir` let file `a` (100 bytes) be skipped.
fn resumes_a(dir: &Path, env: &Arc<Envelope>, index: &ChunkIndex) -> bool {
    let mut earlier = EarlierRuns::open(dir, &binding(), env);
    earlier.lookup(&walked("a", 100), ChangeDetection::Strict, index).is_some()
}

fn write_journal(dir: &Path, env: &Arc<Envelope>, files: &[Entry]) -> PathBuf {
    let j = JournalWriter::create(dir, &binding(), env.clone()).unwrap();
    for f in files {
        j.append(f, READ_AT);
    }
    assert!(j.flush_and_sync());
    j.path().to_path_buf()
}

#[test]
fn finished_files_resume_only_with_indexed_chunks_and_same_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(1);
    write_journal(dir.path(), &env, &[read("a", &[1]), read("b/c", &[2, 3]), read("d", &[4]), read("e", &[5])]);
    let index = index_of(&[1, 2, 3, 5]);
    let mut earlier = EarlierRuns::open(dir.path(), &binding(), &env);
    assert_eq!(earlier.files().len(), 1);
    let mode = ChangeDetection::Strict;
    let got = earlier.lookup(&walked("a", 100), mode, &index).unwrap();
    assert_eq!(got.chunks, vec![chunk(1)]);
    assert_eq!(got.read_at, READ_AT);
    // A file the journal does not have, between two it has.
    assert!(earlier.lookup(&walked("b/a", 100), mode, &index).is_none());
    assert_eq!(earlier.lookup(&walked("b/c", 200), mode, &index).unwrap().chunks, vec![chunk(2), chunk(3)]);
    // Chunk 4 is in no stored index segment: read it again.
    assert!(earlier.lookup(&walked("d", 100), mode, &index).is_none());
    // Changed since: same size, another mtime.
    let mut e = walked("e", 100);
    e.mtime += 1;
    assert!(earlier.lookup(&e, mode, &index).is_none());
}

#[test]
fn strict_mode_compares_ctime_and_inode_mtime_size_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(1);
    write_journal(dir.path(), &env, &[read("a", &[1]), read("b", &[1])]);
    let index = index_of(&[1]);
    let mut strict = EarlierRuns::open(dir.path(), &binding(), &env);
    let mut e = walked("a", 100);
    e.ctime += SECOND; // mtime put back with touch -d: ctime still moved
    assert!(strict.lookup(&e, ChangeDetection::Strict, &index).is_none());
    let mut e = walked("b", 100);
    e.ino += 1;
    assert!(strict.lookup(&e, ChangeDetection::Strict, &index).is_none());
    let mut loose = EarlierRuns::open(dir.path(), &binding(), &env);
    let mut e = walked("a", 100);
    e.ctime += SECOND;
    assert!(loose.lookup(&e, ChangeDetection::MtimeSize, &index).is_some());
}

#[test]
fn an_mtime_within_a_second_of_the_read_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(1);
    let mut racy = read("a", &[1]);
    racy.mtime = READ_AT - SECOND / 2;
    write_journal(dir.path(), &env, &[racy.clone()]);
    let mut earlier = EarlierRuns::open(dir.path(), &binding(), &env);
    let mut now = walked("a", 100);
    now.mtime = racy.mtime;
    assert!(earlier.lookup(&now, ChangeDetection::Strict, &index_of(&[1])).is_none());
}

#[test]
fn a_journal_of_another_repository_source_host_or_paths_is_ignored() {
    let env = envelope(1);
    let index = index_of(&[1]);
    let others = [
        Binding { repository: "cd".repeat(32), ..binding() },
        Binding { source_label: "work".into(), ..binding() },
        Binding { hostname: "desktop".into(), ..binding() },
        Binding { paths: vec!["/home/me".into(), "/etc".into()], ..binding() },
    ];
    for other in others {
        let dir = tempfile::tempdir().unwrap();
        let j = JournalWriter::create(dir.path(), &other, env.clone()).unwrap();
        j.append(&read("a", &[1]), READ_AT);
        assert!(j.flush_and_sync());
        // Named as ours, as if copied or renamed: the header still tells.
        let ours = dir.path().join(format!("{}-{}.journal", binding().file_prefix(), "00".repeat(RUN_ID_LEN)));
        std::fs::rename(j.path(), &ours).unwrap();
        assert!(!resumes_a(dir.path(), &env, &index), "{other:?}");
    }
    // Sealed with another repository's key.
    let dir = tempfile::tempdir().unwrap();
    write_journal(dir.path(), &envelope(2), &[read("a", &[1])]);
    assert!(!resumes_a(dir.path(), &env, &index));
}

#[test]
fn a_damaged_frame_ends_the_journal_there_and_garbage_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(1);
    let index = index_of(&[1, 2]);
    let j = JournalWriter::create(dir.path(), &binding(), env.clone()).unwrap();
    j.append(&read("a", &[1]), READ_AT);
    assert!(j.flush_and_sync());
    let intact = std::fs::metadata(j.path()).unwrap().len();
    j.append(&read("b", &[2]), READ_AT);
    assert!(j.flush_and_sync());
    let path = j.path().to_path_buf();
    std::mem::forget(j); // As if killed.
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(intact + 30)).unwrap();
    f.write_all(b"flipped").unwrap();
    let mut earlier = EarlierRuns::open(dir.path(), &binding(), &env);
    assert!(earlier.lookup(&walked("a", 100), ChangeDetection::Strict, &index).is_some());
    assert!(earlier.lookup(&walked("b", 100), ChangeDetection::Strict, &index).is_none());

    // Cut inside a frame: the same.
    f.set_len(intact + 10).unwrap();
    assert!(resumes_a(dir.path(), &env, &index));

    // Not a journal at all, or a huge frame length: ignored, never a panic.
    for junk in [&b"nonsense"[..], &[0xff; 64][..]] {
        std::fs::write(&path, junk).unwrap();
        assert!(!resumes_a(dir.path(), &env, &index));
    }
    let mut huge = MAGIC.to_vec();
    huge.extend_from_slice(&[0; RUN_ID_LEN]);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&path, huge).unwrap();
    assert!(!resumes_a(dir.path(), &env, &index));
}

#[test]
fn journals_of_several_interrupted_runs_are_all_read() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(1);
    write_journal(dir.path(), &env, &[read("a", &[1]), read("c", &[1])]);
    write_journal(dir.path(), &env, &[read("a", &[1]), read("b", &[1])]);
    let index = index_of(&[1]);
    let mut earlier = EarlierRuns::open(dir.path(), &binding(), &env);
    assert_eq!(earlier.files().len(), 2);
    for name in ["a", "b", "c"] {
        assert!(earlier.lookup(&walked(name, 100), ChangeDetection::Strict, &index).is_some(), "{name}");
    }
}

#[test]
fn frames_are_written_by_size_and_removed_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(1);
    let j = JournalWriter::create(dir.path(), &binding(), env.clone()).unwrap();
    let header = std::fs::metadata(j.path()).unwrap().len();
    // About 1 MiB of files: at least one frame reaches the disk unasked.
    for i in 0..12_000u32 {
        j.append(&read(&format!("f{i:08}"), &[1, 2]), READ_AT);
    }
    assert!(std::fs::metadata(j.path()).unwrap().len() > header);
    let path = j.path().to_path_buf();
    j.remove();
    assert!(!path.exists());
}

#[test]
fn journals_untouched_for_a_month_are_deleted_whatever_they_belong_to() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(1);
    let other = Binding { source_label: "gone".into(), ..binding() };
    let old = JournalWriter::create(dir.path(), &other, env.clone()).unwrap();
    let recent = JournalWriter::create(dir.path(), &other, env.clone()).unwrap();
    let month_ago = std::time::SystemTime::now() - ABANDONED_AFTER - Duration::from_secs(60);
    File::options().write(true).open(old.path()).unwrap().set_modified(month_ago).unwrap();
    EarlierRuns::open(dir.path(), &binding(), &env);
    assert!(!old.path().exists());
    assert!(recent.path().exists());
}
