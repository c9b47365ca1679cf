//! The fixed test repository every target is aimed at: a real repository
//! (two real backups of a small tree) committed under `fuzz/fixture/repo`,
//! sealed with a fixed master key so that a target can seal what the
//! fuzzer writes and reach the decoders behind the AEAD. The seed
//! generator (`vger-fuzz-seeds`) writes it; every process loads it into a
//! [`MemoryStorage`] once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use vger_chunker::ChunkerParams;
use vger_crypto::{Algorithm, Envelope, MasterKey, ObjectType};
use vger_engine::backup::resume::{Binding, JournalWriter};
use vger_engine::index::ChunkIndex;
use vger_engine::repository::Repository;
use vger_engine::snapshots::{self, SnapshotInfo};
use vger_engine::tree::{SnapshotTree, TreeStore};
use vger_format::entry::Entry;
use vger_format::id::SegmentId;
use vger_format::index::IndexSegment;
use vger_storage::{LocalStorage, Storage};

use crate::memory::MemoryStorage;

/// The fixture's passphrase (its key slot has the cheapest Argon2 cost).
pub const PASSPHRASE: &[u8] = b"fuzz";
/// The AEAD of the fixture repository.
pub const ALGORITHM: Algorithm = Algorithm::Aes256Gcm;
/// Source label, host and path of the fixture's backups and journals.
pub const SOURCE_LABEL: &str = "fuzz";
pub const HOSTNAME: &str = "fuzz-host";
pub const SOURCE_PATH: &str = "/fuzz/src";

/// The fixture's chunker: small, so that a small tree makes files of
/// several chunks.
pub const CHUNKER: ChunkerParams = ChunkerParams { min_size: 2 << 10, avg_size: 8 << 10, max_size: 32 << 10 };

/// The fixed master key: not a secret, a test vector.
pub fn master_key() -> MasterKey {
    MasterKey::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11)))
}

/// The envelope the fixture's objects are sealed with.
pub fn envelope() -> Envelope {
    // Both inputs are constants of a supported algorithm and key length.
    Envelope::new(ALGORITHM, &master_key()).unwrap_or_else(|_| Envelope::plaintext())
}

/// `fuzz/` at the top of the repository.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

pub fn fixture_repo_dir() -> PathBuf {
    fuzz_dir().join("fixture/repo")
}

/// What resume journals of the fixture's source are bound to.
pub fn binding(repository_id: &[u8; 32]) -> Binding {
    Binding {
        repository: hex::encode(repository_id),
        source_label: SOURCE_LABEL.into(),
        hostname: HOSTNAME.into(),
        paths: vec![SOURCE_PATH.into()],
    }
}

/// The AEAD identity of frame `n` of journal run `run` (docs/format.md,
/// section 9).
pub fn journal_frame_identity(run: &[u8], n: u64) -> Vec<u8> {
    format!("resume-journal/{}/{n}", hex::encode(run)).into_bytes()
}

/// The loaded fixture.
pub struct Fixture {
    pub storage: Arc<MemoryStorage>,
    pub repo: Repository,
    /// The same repository with its index cache in [`Fixture::cache_dir`].
    pub cached_repo: Repository,
    pub cache_dir: PathBuf,
    /// The file name of the cache in `cache_dir`.
    pub cache_name: String,
    /// Where a target writes a resume journal, named [`Fixture::journal_name`].
    pub journal_dir: PathBuf,
    pub journal_name: String,
    pub binding: Binding,
    pub index: Arc<ChunkIndex>,
    /// The segments the index was built from.
    pub segments: Vec<(SegmentId, IndexSegment)>,
    pub snapshots: Vec<SnapshotInfo>,
    /// The entries of the newest snapshot, with their paths, in walk order.
    pub entries: Vec<Entry>,
}

/// Scratch folders on tmpfs when there is one: an fsync there is free.
fn scratch_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// This process's scratch folder. The fixture lives in a static, which is
/// never dropped, so the folder is removed by an `atexit` handler instead:
/// without it every fuzzing or replay process left one in `/dev/shm`.
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_scratch() {
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn open(storage: Arc<MemoryStorage>) -> Repository {
    match Repository::open(storage, &|| Ok(PASSPHRASE.to_vec())) {
        Ok(repo) => repo,
        Err(e) => fail(&format!("cannot open the fixture repository: {e}")),
    }
}

/// Stops the process: without its fixture a target tests nothing.
fn fail(why: &str) -> ! {
    eprintln!("vger-fuzz-harness: {why}; regenerate it with `cargo run -p vger-fuzz-harness --bin vger-fuzz-seeds`");
    std::process::exit(2)
}

impl Fixture {
    fn load() -> Self {
        let dir = fixture_repo_dir();
        let disk = LocalStorage::open(&dir).unwrap_or_else(|e| fail(&format!("no fixture at {}: {e}", dir.display())));
        let storage = Arc::new(MemoryStorage::default());
        let objects = disk.list("").unwrap_or_else(|e| fail(&e.to_string()));
        for o in objects {
            let data = disk.get(&o.key).unwrap_or_else(|e| fail(&e.to_string()));
            storage.put(&o.key, &data).unwrap_or_else(|e| fail(&e.to_string()));
        }
        let repo = open(storage.clone());
        let scratch = scratch_base().join(format!("vger-fuzz-{}", std::process::id()));
        if SCRATCH.set(scratch.clone()).is_ok() {
            // SAFETY: registers a function that takes nothing and only reads
            // a static that is set once, above, before the registration.
            unsafe { libc::atexit(remove_scratch) };
        }
        let cache_dir = scratch.join("index-cache");
        let journal_dir = scratch.join("resume");
        let cached_repo = open(storage.clone()).with_index_cache(Some(cache_dir.clone())).with_index_cache_always();
        let cache_name = format!("{}.index", hex::encode(repo.repository_id()));
        let binding = binding(repo.repository_id());
        // The journal's file name is the writer's business: ask it.
        let journal_name = match JournalWriter::create(&journal_dir, &binding, repo.envelope().clone()) {
            Ok(w) => {
                let name = w.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                w.remove();
                name
            }
            Err(e) => fail(&format!("cannot create a resume journal: {e}")),
        };
        let _ = std::fs::remove_dir_all(&scratch);
        let index = Arc::new(ChunkIndex::load(&repo).unwrap_or_else(|e| fail(&e.to_string())));
        let segments = vger_engine::index::load_segments(&repo).unwrap_or_else(|e| fail(&e.to_string()));
        let snapshots = snapshots::list(&repo).unwrap_or_else(|e| fail(&e.to_string()));
        let newest = snapshots.last().unwrap_or_else(|| fail("the fixture has no snapshot"));
        let entries = snapshot_entries(&repo, &index, newest).unwrap_or_else(|e| fail(&e.to_string()));
        Fixture {
            storage,
            repo,
            cached_repo,
            cache_dir,
            cache_name,
            journal_dir,
            journal_name,
            binding,
            index,
            segments,
            snapshots,
            entries,
        }
    }

    /// Seals `plaintext` as the repository seals an object of type `ty`
    /// stored as `identity`.
    pub fn seal(&self, ty: ObjectType, identity: &[u8], plaintext: &[u8]) -> Vec<u8> {
        // Sealing fails only if the OS has no randomness for the nonce.
        self.repo.envelope().seal(ty, identity, plaintext).unwrap_or_default()
    }

    /// Stores `data` under `key` until the returned guard is dropped.
    pub fn plant(&self, key: &str, data: &[u8]) -> Planted<'_> {
        let previous = self.storage.get(key).ok();
        let _ = self.storage.put(key, data);
        Planted { storage: &self.storage, key: key.to_owned(), previous }
    }
}

/// Every entry of a snapshot, with its path, in walk order.
pub fn snapshot_entries(
    repo: &Repository,
    index: &Arc<ChunkIndex>,
    snapshot: &SnapshotInfo,
) -> vger_engine::Result<Vec<Entry>> {
    let store = TreeStore::new(repo, index.clone(), 1 << 20);
    SnapshotTree::open(&store, snapshot)
        .walk(b"")?
        .map(|item| item.map(|i| i.entry.entry().with_path(i.path)))
        .collect()
}

/// An object put into the fixture for one run; the fixture is restored
/// when it is dropped.
pub struct Planted<'a> {
    storage: &'a MemoryStorage,
    key: String,
    previous: Option<Vec<u8>>,
}

impl Drop for Planted<'_> {
    fn drop(&mut self) {
        let _ = match &self.previous {
            Some(data) => self.storage.put(&self.key, data),
            None => self.storage.delete(&self.key),
        };
    }
}

/// The fixture, loaded on first use and held for one run at a time (the
/// corpus replay runs tests on several threads; a target changes the
/// shared storage while it runs).
pub fn fixture() -> MutexGuard<'static, Fixture> {
    static FIXTURE: OnceLock<Mutex<Fixture>> = OnceLock::new();
    FIXTURE.get_or_init(|| Mutex::new(Fixture::load())).lock().unwrap_or_else(PoisonError::into_inner)
}
