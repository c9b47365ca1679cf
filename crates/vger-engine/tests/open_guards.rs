//! Opening a repository whose storage someone else can write to: key
//! slots planted to make every open slow or impossible, and a `config`
//! altered by someone who holds the key.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use vger_crypto::{wrap_master_key, KdfLimit, KdfParams, MasterKey};
use vger_engine::repository::{InitOptions, OpenPolicy, Repository};
use vger_engine::EngineError;
use vger_format::id::{KeySlotId, CONFIG_KEY};
use vger_format::key_slot::KeySlot;
use vger_storage::{LocalStorage, Storage};

const RIGHT: &[u8] = b"the owner's passphrase";

fn init(dir: &Path, kdf: KdfParams) -> Repository {
    let storage = Arc::new(LocalStorage::create(&dir.join("repo")).unwrap());
    Repository::init(storage, Some(RIGHT.to_vec()), InitOptions { kdf, ..InitOptions::default() }).unwrap()
}

fn open(dir: &Path, policy: &OpenPolicy) -> Result<Repository, EngineError> {
    let storage = Arc::new(LocalStorage::open(&dir.join("repo")).unwrap());
    Repository::open_with(storage, &|| Ok(RIGHT.to_vec()), policy)
}

/// A slot with `params` that no passphrase of the owner opens; `costly`
/// ones are never derived here, so their content is noise.
fn plant_slot(dir: &Path, repo: &Repository, n: u8, params: KdfParams, derive: bool) {
    let wrapped = if derive {
        wrap_master_key(&MasterKey::generate().unwrap(), b"the thief's", repo.repository_id(), params).unwrap()
    } else {
        vger_crypto::WrappedKey { params, salt: [n; 32], nonce: [n; 12], wrapped: vec![n; 112] }
    };
    let slot = KeySlot::from_wrapped(&wrapped, "1970-01-01T00:00:00Z".into(), "x".into(), "x".into(), "planted".into());
    // Ids sort before the owner's, dates are the oldest possible.
    let id = KeySlotId([n; 32]);
    repo.storage().put(&id.storage_key(), &slot.encode().unwrap()).unwrap();
    let file = std::fs::File::options().write(true).open(dir.join("repo").join(id.storage_key())).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000)).unwrap();
}

#[test]
fn planted_key_slots_cost_the_owner_little() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), KdfParams::insecure_fast());
    let memory = dir.path().join("state");
    let policy = OpenPolicy { settings_dir: Some(memory.clone()), ..OpenPolicy::default() };
    open(dir.path(), &policy).unwrap();

    // Slots asking for 4 GiB and 64 passes: minutes and all the memory,
    // if they were derived.
    for n in 0..3 {
        plant_slot(dir.path(), &repo, n, KdfParams { m_cost_kib: 4 << 20, t_cost: 64, p_cost: 4 }, false);
    }
    // And many cheap, valid slots of another passphrase.
    for n in 10..30 {
        plant_slot(dir.path(), &repo, n, KdfParams::insecure_fast(), true);
    }

    // This client remembers the slot that opened it: one derivation.
    let started = Instant::now();
    open(dir.path(), &policy).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());

    // A client that never opened it tries the oldest slots (these planted
    // ones are backdated, which only a host with filesystem access can
    // do): the costly ones are never derived, at most 8 others are.
    let started = Instant::now();
    let err = open(dir.path(), &OpenPolicy::default()).err().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let text = err.to_string();
    assert!(matches!(err, EngineError::WrongPassphrase { .. }), "{text}");
    assert!(text.contains("8 of 24 key slots tried") && text.contains("3 skipped"), "{text}");
}

#[test]
fn slots_above_the_cap_are_refused_until_the_user_raises_it() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), KdfParams { m_cost_kib: 16 << 10, t_cost: 2, p_cost: 1 });
    let low =
        OpenPolicy { kdf_limit: KdfLimit { max_memory_kib: 8 << 10, max_iterations: 10 }, ..OpenPolicy::default() };
    let err = open(dir.path(), &low).err().unwrap();
    let text = err.to_string();
    assert!(matches!(err, EngineError::KeySlotsTooCostly { .. }), "{text}");
    assert!(text.contains("16 MiB") && text.contains("kdf_max_memory"), "{text}");
    open(dir.path(), &OpenPolicy::default()).unwrap();
}

#[test]
fn an_altered_chunker_is_refused_by_a_client_that_saw_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path(), KdfParams::insecure_fast());
    let memory = dir.path().join("state");
    repo.remember_settings(&memory).unwrap();
    // Someone with the key (a stolen laptop with write access) makes the
    // chunks tiny, which would reveal file structure through chunk sizes.
    let mut config = repo.config().clone();
    config.chunker.min_size = 64;
    config.chunker.avg_size = 256;
    config.chunker.max_size = 1024;
    let master = repo.master_key().unwrap();
    let bytes = config.encode(|b| master.config_mac(b)).unwrap();
    repo.storage().put(CONFIG_KEY, &bytes).unwrap();

    let policy = OpenPolicy { settings_dir: Some(memory.clone()), ..OpenPolicy::default() };
    let err = open(dir.path(), &policy).err().unwrap();
    let text = err.to_string();
    assert!(matches!(err, EngineError::SettingsChanged { .. }), "{text}");
    assert!(text.contains("the chunker") && text.contains("64/256/1024"), "{text}");
    // A client with no memory of it opens it (the MAC is valid).
    open(dir.path(), &OpenPolicy::default()).unwrap();
}
