//! Opening the master key with a passphrase: which key slots are tried,
//! in which order, and how much each may cost.
//!
//! Key slots are plaintext objects under `keys/`, and whoever can write
//! there (an append-only client, a storage host) can add slots. So:
//! - a slot whose Argon2 parameters exceed the client's [`KdfLimit`] is
//!   not derived at all;
//! - each slot costs at most one derivation, and at most
//!   [`MAX_SLOTS_TRIED`] slots are derived per open (of at most
//!   [`MAX_SLOTS_READ`] read);
//! - the order is set by the client, not by the slots: first the slot that
//!   opened this repository last on this client (remembered locally), then
//!   the oldest by the storage's own timestamp (a slot cannot backdate the
//!   time the storage received it), then by id.

use vger_crypto::{unwrap_master_key, CryptoError, KdfLimit, MasterKey};
use vger_format::id::{KeySlotId, KEYS_PREFIX};
use vger_format::key_slot::KeySlot;
use vger_storage::Storage;

use crate::repository::crypto_err;
use crate::{EngineError, Result};

/// Derivations per open at most.
pub const MAX_SLOTS_TRIED: usize = 8;
/// Slots fetched per open at most (unreadable and too costly ones are
/// skipped without a derivation, but each costs a request).
pub const MAX_SLOTS_READ: usize = 32;

/// The master key and the slot that opened it.
pub(crate) struct Unlocked {
    pub master: MasterKey,
    pub slot: KeySlotId,
}

/// Tries `passphrase` against the key slots of the repository, as the
/// module docs describe.
pub(crate) fn unlock(
    storage: &dyn Storage,
    passphrase: &[u8],
    repository_id: &[u8; 32],
    location: &str,
    limit: &KdfLimit,
    remembered: Option<KeySlotId>,
) -> Result<Unlocked> {
    let mut listed: Vec<(KeySlotId, Option<u64>)> = storage
        .list(KEYS_PREFIX)?
        .into_iter()
        .filter_map(|o| Some((KeySlotId::from_storage_key(&o.key)?, o.modified)))
        .collect();
    if listed.is_empty() {
        return Err(EngineError::NoKeys { location: location.to_string() });
    }
    listed.sort_by_key(|(id, modified)| (Some(*id) != remembered, modified.unwrap_or(u64::MAX), *id));
    let mut tried = 0;
    let mut too_costly: Vec<String> = Vec::new();
    let mut broken: Option<EngineError> = None;
    for (id, _) in listed.iter().take(MAX_SLOTS_READ) {
        if tried == MAX_SLOTS_TRIED {
            break;
        }
        let slot = storage.get(&id.storage_key()).map_err(EngineError::from).and_then(|b| Ok(KeySlot::decode(&b)?));
        let wrapped = match slot.and_then(|s| Ok(s.to_wrapped()?)) {
            Ok(w) => w,
            Err(e) => {
                broken.get_or_insert(e);
                continue;
            }
        };
        if !limit.admits(&wrapped.params) {
            too_costly.push(format!(
                "slot {} asks for {} MiB and {} passes",
                id.short(),
                wrapped.params.m_cost_kib / 1024,
                wrapped.params.t_cost
            ));
            continue;
        }
        tried += 1;
        match unwrap_master_key(&wrapped, passphrase, repository_id) {
            Ok(master) => return Ok(Unlocked { master, slot: *id }),
            Err(CryptoError::WrongPassphrase) => {}
            Err(e) => {
                broken.get_or_insert(crypto_err(e));
            }
        }
    }
    if tried == 0 {
        if !too_costly.is_empty() {
            let cap = format!("the cap is {} MiB and {} passes", limit.max_memory_kib / 1024, limit.max_iterations);
            return Err(EngineError::KeySlotsTooCostly {
                location: location.to_string(),
                detail: format!("{}; {cap}", too_costly.join(", ")),
            });
        }
        if let Some(e) = broken {
            return Err(e);
        }
    }
    let mut skipped = Vec::new();
    if listed.len() > tried {
        skipped.push(format!("{tried} of {} key slots tried", listed.len()));
    }
    if !too_costly.is_empty() {
        skipped.push(format!("{} skipped as above the Argon2 cap", too_costly.len()));
    }
    let note = if skipped.is_empty() { String::new() } else { format!("; {}", skipped.join(", ")) };
    Err(EngineError::WrongPassphrase { location: location.to_string(), note })
}
