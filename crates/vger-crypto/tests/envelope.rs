#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use vger_crypto::{
    unwrap_master_key, wrap_master_key, Algorithm, CryptoError, Envelope, KdfParams, MasterKey, ObjectType,
    ENVELOPE_OVERHEAD,
};

fn algos() -> impl Strategy<Value = Algorithm> {
    prop_oneof![Just(Algorithm::None), Just(Algorithm::Aes256Gcm), Just(Algorithm::Chacha20Poly1305)]
}

proptest! {
    #[test]
    fn round_trip(algo in algos(), data in proptest::collection::vec(any::<u8>(), 0..5000), id in proptest::collection::vec(any::<u8>(), 0..40)) {
        let key = MasterKey::generate().unwrap();
        let env = Envelope::new(algo, &key).unwrap();
        let sealed = env.seal(ObjectType::DataChunk, &id, &data).unwrap();
        prop_assert_eq!(sealed.len(), data.len() + ENVELOPE_OVERHEAD);
        let opened = env.open(ObjectType::DataChunk, &id, sealed).unwrap();
        prop_assert_eq!(opened, data);
    }

    #[test]
    fn any_flipped_bit_fails(algo in algos(), data in proptest::collection::vec(any::<u8>(), 1..2000), bit in any::<usize>()) {
        let key = MasterKey::generate().unwrap();
        let env = Envelope::new(algo, &key).unwrap();
        let mut sealed = env.seal(ObjectType::TreeChunk, b"id", &data).unwrap();
        let bit = bit % (sealed.len() * 8);
        sealed[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(env.open(ObjectType::TreeChunk, b"id", sealed).is_err());
    }

    #[test]
    fn wrong_identity_fails(algo in algos(), data in proptest::collection::vec(any::<u8>(), 0..500)) {
        let key = MasterKey::generate().unwrap();
        let env = Envelope::new(algo, &key).unwrap();
        let sealed = env.seal(ObjectType::DataChunk, b"chunk-a", &data).unwrap();
        prop_assert_eq!(env.open(ObjectType::DataChunk, b"chunk-b", sealed).unwrap_err(), CryptoError::Authentication);
    }
}

#[test]
fn wrong_type_fails() {
    let key = MasterKey::generate().unwrap();
    let env = Envelope::new(Algorithm::Aes256Gcm, &key).unwrap();
    let sealed = env.seal(ObjectType::IndexSegment, b"index/x", b"data").unwrap();
    assert!(matches!(env.open(ObjectType::Snapshot, b"index/x", sealed), Err(CryptoError::WrongType { .. })));
}

#[test]
fn wrong_key_fails() {
    for algo in [Algorithm::Aes256Gcm, Algorithm::Chacha20Poly1305] {
        let a = Envelope::new(algo, &MasterKey::generate().unwrap()).unwrap();
        let b = Envelope::new(algo, &MasterKey::generate().unwrap()).unwrap();
        let sealed = a.seal(ObjectType::Snapshot, b"s", b"secret").unwrap();
        assert_eq!(b.open(ObjectType::Snapshot, b"s", sealed).unwrap_err(), CryptoError::Authentication);
    }
}

#[test]
fn downgrade_to_plaintext_is_refused() {
    let key = MasterKey::generate().unwrap();
    let plain = Envelope::plaintext().seal(ObjectType::Snapshot, b"s", b"forged").unwrap();
    let env = Envelope::new(Algorithm::Aes256Gcm, &key).unwrap();
    assert!(matches!(env.open(ObjectType::Snapshot, b"s", plain), Err(CryptoError::AlgorithmMismatch { .. })));
}

#[test]
fn newer_version_is_refused_clearly() {
    let key = MasterKey::generate().unwrap();
    let env = Envelope::new(Algorithm::Aes256Gcm, &key).unwrap();
    let mut sealed = env.seal(ObjectType::Snapshot, b"s", b"x").unwrap();
    sealed[0] = 9;
    let err = env.open(ObjectType::Snapshot, b"s", sealed).unwrap_err();
    assert_eq!(err, CryptoError::NewerVersion { found: 9 });
    assert!(err.to_string().contains("upgrade"));
}

#[test]
fn truncated_is_refused() {
    let env = Envelope::plaintext();
    assert!(matches!(env.open(ObjectType::Snapshot, b"s", vec![1, 5, 0]), Err(CryptoError::Truncated { .. })));
}

#[test]
fn key_wrap_round_trip_and_wrong_passphrase() {
    let key = MasterKey::generate().unwrap();
    let repo = [3u8; 32];
    let slot = wrap_master_key(&key, b"correct horse", &repo, KdfParams::insecure_fast()).unwrap();
    let back = unwrap_master_key(&slot, b"correct horse", &repo).unwrap();
    assert_eq!(back.config_mac(b"x"), key.config_mac(b"x"));
    assert_eq!(unwrap_master_key(&slot, b"wrong", &repo).unwrap_err(), CryptoError::WrongPassphrase);
    // A slot from another repository does not open this one.
    assert_eq!(unwrap_master_key(&slot, b"correct horse", &[4u8; 32]).unwrap_err(), CryptoError::WrongPassphrase);
}

#[test]
fn hostile_kdf_params_are_refused() {
    let key = MasterKey::generate().unwrap();
    let mut slot = wrap_master_key(&key, b"p", &[0u8; 32], KdfParams::insecure_fast()).unwrap();
    slot.params.m_cost_kib = u32::MAX;
    assert!(matches!(unwrap_master_key(&slot, b"p", &[0u8; 32]), Err(CryptoError::KdfParams(_))));
}

#[test]
fn chunk_ids_are_keyed() {
    let a = MasterKey::generate().unwrap().chunk_id_key();
    let b = MasterKey::generate().unwrap().chunk_id_key();
    assert_ne!(a.chunk_id(b"data"), b.chunk_id(b"data"));
    assert_eq!(a.chunk_id(b"data"), a.chunk_id(b"data"));
}
