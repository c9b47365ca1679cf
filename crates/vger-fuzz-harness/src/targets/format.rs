//! Targets for the small decoders of `vger-format` and `vger-crypto`:
//! envelopes, compressed payloads, the `config` object, key slots and
//! storage keys.

use std::sync::{Arc, OnceLock};

use vger_chunker::ChunkerParams;
use vger_crypto::{Algorithm, Envelope, MasterKey, ObjectType};
use vger_engine::repository::Repository;
use vger_format::compress::{compress, decompress, decompress_ref, Codec, CODEC_HEADER_LEN};
use vger_format::id::{KeySlotId, PackId, SegmentId, SnapshotId};
use vger_format::key_slot::KeySlot;
use vger_format::object::METADATA_CAP;
use vger_format::repo_config::RepoConfig;
use vger_protocol::{Operation, Permission};
use vger_storage::keys::{validate_key, validate_prefix};
use vger_storage::Storage;

use super::{refused, Input};
use crate::fixture::master_key;
use crate::memory::MemoryStorage;
use crate::Outcome;

/// The three envelopes a repository can have, keyed with the fixture's key.
fn envelopes() -> &'static [Envelope; 3] {
    static ENVELOPES: OnceLock<[Envelope; 3]> = OnceLock::new();
    ENVELOPES.get_or_init(|| {
        let key = master_key();
        let keyed = |algo| Envelope::new(algo, &key).unwrap_or_else(|_| Envelope::plaintext());
        [keyed(Algorithm::Aes256Gcm), keyed(Algorithm::Chacha20Poly1305), Envelope::plaintext()]
    })
}

/// `[selector][identity length][identity][envelope]`: the selector picks
/// the object type (`1 + s % 6`) and the algorithm (`s / 6 % 3`: AES-GCM,
/// ChaCha20, none). Both ways to open must agree.
pub(crate) fn envelope(data: &[u8]) -> Outcome {
    let [selector, id_len, rest @ ..] = data else { return Err("too short".into()) };
    let ty = ObjectType::from_tag(1 + selector % 6).ok_or("object type")?;
    let envelope = &envelopes()[usize::from(selector / 6 % 3)];
    let (identity, sealed) = rest.split_at(usize::from(*id_len).min(rest.len()));
    let opened = envelope.open(ty, identity, sealed.to_vec());
    let mut in_place = sealed.to_vec();
    let opened_in_place = envelope.open_in_place(ty, identity, &mut in_place).map(<[u8]>::to_vec);
    match (opened, opened_in_place) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "open and open_in_place disagree");
            assert_eq!(a.len() + vger_crypto::ENVELOPE_OVERHEAD, sealed.len());
            Ok(())
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "open and open_in_place refuse differently");
            Err(refused(a))
        }
        (a, b) => panic!("open gave {a:?}, open_in_place {b:?}"),
    }
}

/// `[cap selector][payload]`: decompresses under the caps the engine uses
/// (a data chunk's, a tree chunk's, a metadata object's), checks the two
/// decoders agree and that nothing exceeds its cap, and that compressing
/// the payload's bytes with each codec gives them back.
pub(crate) fn compressed_payload(data: &[u8]) -> Outcome {
    let Some((selector, payload)) = data.split_first() else { return Err("empty".into()) };
    let chunk_caps = [ChunkerParams::DATA, ChunkerParams::TREE, crate::fixture::CHUNKER].map(|p| p.max_size as usize);
    for codec in [Codec::None, Codec::Lz4, Codec::Zstd(1)] {
        let packed = compress(codec, payload);
        assert_eq!(decompress(&packed, payload.len()).ok().as_deref(), Some(payload), "{codec} round trip");
    }
    if selector % 4 == 3 {
        let out = decompress(payload, METADATA_CAP).map_err(refused)?;
        assert!(out.len() <= METADATA_CAP);
        return Ok(());
    }
    let cap = chunk_caps[usize::from(selector % 4).min(2)];
    let whole = decompress(payload, cap);
    let mut scratch = Vec::new();
    let by_ref = decompress_ref(payload, cap, &mut scratch).map(<[u8]>::to_vec);
    match (whole, by_ref) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "decompress and decompress_ref disagree");
            assert!(a.len() <= cap, "{} bytes out of a payload capped at {cap}", a.len());
            assert!(payload.len() >= CODEC_HEADER_LEN);
            Ok(())
        }
        (Err(e), Err(_)) => Err(refused(e)),
        (a, b) => panic!("decompress gave {a:?}, decompress_ref {b:?}"),
    }
}

fn public_checksum(body: &[u8]) -> [u8; 32] {
    *blake3::keyed_hash(&[0u8; 32], body).as_bytes()
}

fn config_object(mac: [u8; 32], body: &[u8]) -> Vec<u8> {
    let mut out = b"VGERCONF".to_vec();
    out.extend_from_slice(&mac);
    out.extend_from_slice(body);
    out
}

/// The `config` object as `Repository::open` reads it (stored: as is;
/// plaintext: a body the target frames with the checksum an unencrypted
/// repository carries, so that such a config is opened all the way). An
/// encrypted config stops where the passphrase would be asked: the key
/// slots are another target. The body framed with the fixture key's MAC
/// must verify.
pub(crate) fn repo_config(data: &[u8]) -> Outcome {
    let object = match Input::read(data) {
        Input::Stored(bytes) => bytes.to_vec(),
        Input::Plaintext(body) => {
            let key: MasterKey = master_key();
            let keyed = config_object(key.config_mac(body), body);
            if let Ok((_, mac)) = RepoConfig::decode_unverified(&keyed) {
                assert!(mac.verify(|b| key.config_mac(b)).is_ok(), "the MAC of the key does not verify");
            }
            config_object(public_checksum(body), body)
        }
    };
    let (config, _) = RepoConfig::decode_unverified(&object).map_err(refused)?;
    let storage = Arc::new(MemoryStorage::default());
    storage.put(vger_format::id::CONFIG_KEY, &object).map_err(refused)?;
    let asked = std::cell::Cell::new(false);
    let passphrase = || {
        asked.set(true);
        Err(vger_engine::EngineError::Other("no passphrase in a fuzz run".into()))
    };
    // As a user whose config says `encryption: { mode: none }`: the
    // unencrypted path is then opened all the way.
    let policy = vger_engine::repository::OpenPolicy { unencrypted_allowed: true, ..Default::default() };
    match Repository::open_with(storage, &passphrase, &policy) {
        Ok(repo) => {
            assert_eq!(config.encryption, "none", "an encrypted repository opened without its key");
            let size = repo.pack_target_size();
            assert!((1 << 20..=1 << 30).contains(&size));
            Ok(())
        }
        Err(_) if asked.get() => {
            assert_ne!(config.encryption, "none", "the passphrase was asked for an unencrypted repository");
            Ok(())
        }
        Err(e) => Err(refused(e)),
    }
}

/// A key slot: decoded, checked, turned into the wrapped key the KDF would
/// take (the Argon2 run itself is not fuzzed: a slot's cost is its own
/// issue), and encoded back to the same slot.
pub(crate) fn key_slot(data: &[u8]) -> Outcome {
    let slot = KeySlot::decode(data).map_err(refused)?;
    let again = KeySlot::decode(&slot.encode().map_err(refused)?).map_err(refused)?;
    assert_eq!(slot, again, "a key slot does not survive encoding");
    let wrapped = slot.to_wrapped().map_err(refused)?;
    wrapped.params.validate().map_err(refused)?;
    Ok(())
}

/// A key as a listing or a request would carry it: the storage rules,
/// the parsers of object ids from keys and the permission table.
pub(crate) fn storage_key(data: &[u8]) -> Outcome {
    let key = std::str::from_utf8(data).map_err(refused)?;
    let valid = validate_key(key).is_ok();
    let _ = validate_prefix(key);
    if let Some(id) = PackId::from_storage_key(key) {
        assert!(id.storage_key().eq_ignore_ascii_case(key), "pack key {key:?} parsed as {id}");
        assert!(validate_key(&id.storage_key()).is_ok());
    }
    let flat = [
        SnapshotId::from_storage_key(key).map(|id| id.storage_key()),
        SegmentId::from_storage_key(key).map(|id| id.storage_key()),
        KeySlotId::from_storage_key(key).map(|id| id.storage_key()),
    ];
    for made in flat.into_iter().flatten() {
        assert!(made.eq_ignore_ascii_case(key), "{key:?} parsed into an id stored as {made:?}");
        assert!(validate_key(&made).is_ok());
    }
    for permission in [Permission::Read, Permission::Append, Permission::Full, Permission::Admin] {
        for op in [Operation::Replace { key }, Operation::Delete { key }] {
            if permission == Permission::Append && permission.allows(op) && valid {
                assert_eq!(key.split('/').next(), Some("locks"), "append may change {key:?}");
            }
        }
    }
    if valid {
        Ok(())
    } else {
        Err("invalid key".into())
    }
}
