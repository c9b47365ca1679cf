//! What this client has seen of each repository, by repository id: its
//! encryption and chunker settings, and the key slot that opened it.
//!
//! The `config` object is read from storage, and whoever controls the
//! storage can replace it: with one saying `encryption: none` (no key is
//! needed to write that), the next backup would upload everything in
//! plain text. So the first successful open records the settings in a
//! small file in the client's state folder (`<dir>/<id>.json`, mode 0600,
//! written whole), and every later open compares before asking for the
//! passphrase: a change is refused with an error that names the file to
//! delete if the change was intended. The remembered key slot is tried
//! first on the next open, so slots added by others cannot make an open
//! slow.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vger_format::id::KeySlotId;
use vger_format::repo_config::{ChunkerSizes, RepoConfig};

use crate::{EngineError, Result};

const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Remembered {
    version: u32,
    /// Where it was first seen, for the user reading the file.
    location: String,
    first_seen: String,
    encryption: String,
    chunker: ChunkerSizes,
    /// Hex id of the key slot that opened it last.
    #[serde(default)]
    key_slot: Option<String>,
}

/// The memory of one repository, read before it is opened.
#[derive(Debug)]
pub(crate) struct SettingsMemory {
    path: PathBuf,
    known: Option<Remembered>,
}

impl SettingsMemory {
    /// Reads what `dir` remembers of repository `id` (nothing yet is fine;
    /// an unreadable record is an error, not a reason to forget).
    pub fn read(dir: &Path, id: &[u8; 32]) -> Result<Self> {
        let path = dir.join(format!("{}.json", hex::encode(id)));
        let unreadable = |detail: String| EngineError::SettingsMemoryUnreadable { path: path.clone(), detail };
        let known = match vger_fs::private::read_private_file(&path) {
            Ok(bytes) => Some(serde_json::from_slice::<Remembered>(&bytes).map_err(|e| unreadable(e.to_string()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(unreadable(e.to_string())),
        };
        Ok(SettingsMemory { path, known })
    }

    /// Refuses `config` if its encryption or chunker settings differ from
    /// those seen before.
    pub fn check(&self, config: &RepoConfig, location: &str) -> Result<()> {
        let Some(known) = &self.known else { return Ok(()) };
        let sizes = |s: &ChunkerSizes| format!("{}/{}/{} bytes", s.min_size, s.avg_size, s.max_size);
        let changes = [
            ("encryption", known.encryption.clone(), config.encryption.clone()),
            ("the chunker", sizes(&known.chunker), sizes(&config.chunker)),
        ];
        match changes.into_iter().find(|(_, was, now)| was != now) {
            Some((setting, was, now)) => Err(EngineError::SettingsChanged {
                location: location.to_owned(),
                setting,
                was,
                now,
                memory: self.path.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The key slot that opened this repository last.
    pub fn key_slot(&self) -> Option<KeySlotId> {
        KeySlotId::from_hex(self.known.as_ref()?.key_slot.as_deref()?).ok()
    }

    /// Records `config` (already checked and authenticated) and the slot
    /// that opened it; writes only when something is new.
    pub fn remember(&mut self, config: &RepoConfig, location: &str, slot: Option<KeySlotId>) -> Result<()> {
        let first_seen = self.known.as_ref().map_or_else(crate::repository::now_rfc3339, |k| k.first_seen.clone());
        let location = self.known.as_ref().map_or_else(|| location.to_owned(), |k| k.location.clone());
        let record = Remembered {
            version: VERSION,
            location,
            first_seen,
            encryption: config.encryption.clone(),
            chunker: config.chunker,
            key_slot: slot.map(|s| s.to_hex()),
        };
        if self.known.as_ref() == Some(&record) {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&record)
            .map_err(|e| EngineError::SettingsMemoryUnreadable { path: self.path.clone(), detail: e.to_string() })?;
        vger_fs::private::write_private_file(&self.path, &bytes).map_err(|e| {
            EngineError::io(format!("recording the repository's settings in {}", self.path.display()), e)
        })?;
        self.known = Some(record);
        Ok(())
    }
}
