//! Passphrases: several key slots wrap the same master key, so adding or
//! changing a passphrase never rewrites data.

use serde::Serialize;
use vger_crypto::KdfParams;
use vger_format::id::KeySlotId;

use crate::repository::{list_key_slots, write_key_slot, Repository};
use crate::{EngineError, Result};

#[derive(Debug, Clone, Serialize)]
pub struct KeySlotInfo {
    pub id: String,
    pub created: String,
    pub hostname: String,
    pub username: String,
    pub label: String,
    pub kdf: String,
    pub memory_kib: u32,
    pub iterations: u32,
}

fn master(repo: &Repository) -> Result<&vger_crypto::MasterKey> {
    repo.master_key()
        .ok_or_else(|| EngineError::Other("this repository has no encryption, so it has no passphrases".into()))
}

pub fn list(repo: &Repository) -> Result<Vec<KeySlotInfo>> {
    master(repo)?;
    Ok(list_key_slots(repo.storage().as_ref())?
        .into_iter()
        .map(|(id, s)| KeySlotInfo {
            id: id.to_hex(),
            created: s.created,
            hostname: s.hostname,
            username: s.username,
            label: s.label,
            kdf: s.kdf,
            memory_kib: s.m_cost_kib,
            iterations: s.t_cost,
        })
        .collect())
}

/// Adds a passphrase; returns the new slot's id.
pub fn add(repo: &Repository, passphrase: &[u8], label: &str, kdf: KdfParams) -> Result<KeySlotId> {
    let m = master(repo)?;
    write_key_slot(repo.storage().as_ref(), m, passphrase, repo.repository_id(), kdf, label)
}

/// Removes a key slot by id prefix; refuses to remove the last one.
pub fn remove(repo: &Repository, id_prefix: &str) -> Result<KeySlotId> {
    master(repo)?;
    let slots = list_key_slots(repo.storage().as_ref())?;
    let matches: Vec<KeySlotId> =
        slots.iter().map(|(id, _)| *id).filter(|id| id.to_hex().starts_with(id_prefix)).collect();
    let id = match matches.as_slice() {
        [one] => *one,
        [] => return Err(EngineError::KeySlotNotFound { prefix: id_prefix.to_string() }),
        _ => return Err(EngineError::Other(format!("key slot prefix `{id_prefix}` is ambiguous; give more digits"))),
    };
    if slots.len() <= 1 {
        return Err(EngineError::Other(
            "refusing to remove the last key slot: the repository would become unreadable".into(),
        ));
    }
    repo.storage().delete(&id.storage_key())?;
    Ok(id)
}

/// Replaces the passphrase that opened `repo`: adds a slot with the new one,
/// then removes every slot the old passphrase opens.
pub fn change(repo: &Repository, old_passphrase: &[u8], new_passphrase: &[u8], kdf: KdfParams) -> Result<KeySlotId> {
    let m = master(repo)?;
    let old_slots: Vec<KeySlotId> = list_key_slots(repo.storage().as_ref())?
        .into_iter()
        .filter(|(_, s)| {
            s.to_wrapped()
                .ok()
                .and_then(|w| vger_crypto::unwrap_master_key(&w, old_passphrase, repo.repository_id()).ok())
                .is_some()
        })
        .map(|(id, _)| id)
        .collect();
    let new_id = write_key_slot(repo.storage().as_ref(), m, new_passphrase, repo.repository_id(), kdf, "changed")?;
    for id in old_slots {
        repo.storage().delete(&id.storage_key())?;
    }
    Ok(new_id)
}
