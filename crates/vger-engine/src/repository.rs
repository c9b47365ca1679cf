//! Creating and opening repositories: the `config` object, key slots and the
//! envelope every other module seals objects with.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vger_chunker::ChunkerParams;
use vger_crypto::{wrap_master_key, Algorithm, ChunkIdKey, CryptoError, Envelope, KdfLimit, KdfParams, MasterKey};
use vger_format::compress::Codec;
use vger_format::id::{random_id, KeySlotId, CONFIG_KEY, KEYS_PREFIX};
use vger_format::key_slot::KeySlot;
use vger_format::repo_config::{ChunkerSizes, RepoConfig};
use vger_format::tree::MAX_TREE_OBJECT;
use vger_format::FORMAT_VERSION;
use vger_storage::{Storage, StorageError};

use crate::settings_memory::SettingsMemory;
use crate::unlock::unlock;
use crate::{EngineError, Result};

/// How `init` picks the AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncryptionChoice {
    /// Measure AES-256-GCM and ChaCha20-Poly1305 here; pin the faster.
    #[default]
    Auto,
    Fixed(Algorithm),
}

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub encryption: EncryptionChoice,
    pub chunker: ChunkerParams,
    pub compression: Codec,
    pub kdf: KdfParams,
    pub pack_target_size: u64,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            encryption: EncryptionChoice::Auto,
            chunker: ChunkerParams::DATA,
            compression: Codec::Lz4,
            kdf: KdfParams::default(),
            pack_target_size: 32 << 20,
        }
    }
}

/// What [`Repository::open_with`] accepts beyond a valid config and key.
#[derive(Debug, Clone, Default)]
pub struct OpenPolicy {
    /// The user's configuration says this repository has no encryption
    /// (`encryption: { mode: none }`): only then is an unencrypted one opened.
    pub unencrypted_allowed: bool,
    /// Where the settings seen per repository are remembered and checked
    /// ([`crate::settings_memory`]); `None`: neither.
    pub settings_dir: Option<PathBuf>,
    /// The most Argon2 work one key slot may ask for.
    pub kdf_limit: KdfLimit,
}

/// An open repository: storage plus the keys and settings to read and
/// write its objects.
pub struct Repository {
    storage: Arc<dyn Storage>,
    config: RepoConfig,
    repository_id: [u8; 32],
    envelope: Arc<Envelope>,
    id_key: ChunkIdKey,
    master: Option<MasterKey>,
    chunker: ChunkerParams,
    compression: Codec,
    /// Where the local chunk-index cache lives; none: no cache.
    index_cache_dir: Option<PathBuf>,
    index_cache_threshold: crate::index_cache::CacheThreshold,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.storage.describe())
    }
}

fn sizes(p: ChunkerParams) -> ChunkerSizes {
    ChunkerSizes { min_size: p.min_size, avg_size: p.avg_size, max_size: p.max_size }
}

fn params(s: ChunkerSizes) -> ChunkerParams {
    ChunkerParams { min_size: s.min_size, avg_size: s.avg_size, max_size: s.max_size }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub(crate) fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

pub(crate) fn username() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default()
}

/// The config "MAC" of repositories without encryption: a checksum.
fn public_mac(body: &[u8]) -> [u8; 32] {
    *blake3::keyed_hash(&[0u8; 32], body).as_bytes()
}

impl Repository {
    /// Creates a new repository. `passphrase` is required unless the
    /// encryption is `none`.
    pub fn init(storage: Arc<dyn Storage>, passphrase: Option<Vec<u8>>, opts: InitOptions) -> Result<Self> {
        let location = storage.describe();
        if storage.size(CONFIG_KEY)?.is_some() {
            return Err(EngineError::AlreadyInitialized { location });
        }
        // Leftover key slots from an init that was interrupted are harmless;
        // anything else means the user pointed us at the wrong place.
        let foreign = storage.list("")?.into_iter().any(|o| !o.key.starts_with(KEYS_PREFIX));
        if foreign {
            return Err(EngineError::LocationNotEmpty { location });
        }
        vger_chunker::Chunker::new(opts.chunker).map_err(|e| EngineError::InvalidSetting(e.to_string()))?;
        let algo = match opts.encryption {
            EncryptionChoice::Auto => Algorithm::fastest_on_this_cpu(),
            EncryptionChoice::Fixed(a) => a,
        };
        let repository_id = random_id()?;
        let config = RepoConfig {
            version: FORMAT_VERSION,
            id: repository_id.to_vec(),
            created: now_rfc3339(),
            encryption: algo.name().to_string(),
            chunker: sizes(opts.chunker),
            compression: opts.compression.to_string(),
            pack_target_size: opts.pack_target_size,
        };
        let master = if algo == Algorithm::None {
            None
        } else {
            let passphrase =
                passphrase.ok_or_else(|| EngineError::PassphraseRequired { location: location.clone() })?;
            let master = MasterKey::generate().map_err(crypto_err)?;
            write_key_slot(storage.as_ref(), &master, &passphrase, &repository_id, opts.kdf, "initial key")?;
            Some(master)
        };
        let bytes = match &master {
            Some(m) => config.encode(|b| m.config_mac(b))?,
            None => config.encode(public_mac)?,
        };
        // The config goes last: its presence is what makes a repository.
        storage.put_new(CONFIG_KEY, &bytes).map_err(|e| match e {
            StorageError::AlreadyExists { .. } => EngineError::AlreadyInitialized { location: location.clone() },
            e => e.into(),
        })?;
        Self::assemble(storage, config, master)
    }

    /// Opens an encrypted repository with the default [`OpenPolicy`] (an
    /// unencrypted one is refused). `passphrase` is called once the config
    /// has been read.
    pub fn open(storage: Arc<dyn Storage>, passphrase: &dyn Fn() -> Result<Vec<u8>>) -> Result<Self> {
        Self::open_with(storage, passphrase, &OpenPolicy::default())
    }

    /// Opens a repository under `policy`. `passphrase` is called only if
    /// the repository is encrypted and its settings pass the policy.
    pub fn open_with(
        storage: Arc<dyn Storage>,
        passphrase: &dyn Fn() -> Result<Vec<u8>>,
        policy: &OpenPolicy,
    ) -> Result<Self> {
        let location = storage.describe();
        let bytes = match storage.get(CONFIG_KEY) {
            Ok(b) => b,
            Err(StorageError::NotFound { .. }) => return Err(EngineError::NotARepository { location }),
            Err(e) => return Err(e.into()),
        };
        let (config, mac) = RepoConfig::decode_unverified(&bytes)?;
        let repository_id = config.repository_id()?;
        let algo = Algorithm::from_name(&config.encryption).ok_or_else(|| {
            EngineError::Other(format!(
                "repository {location} uses unknown encryption `{}`; upgrade vger",
                config.encryption
            ))
        })?;
        // Before any passphrase: a replaced config must not make us ask
        // for it, let alone write anything.
        let mut memory = policy.settings_dir.as_deref().map(|d| SettingsMemory::read(d, &repository_id)).transpose()?;
        if let Some(m) = &memory {
            m.check(&config, &location)?;
        }
        let (master, slot) = if algo == Algorithm::None {
            if !policy.unencrypted_allowed {
                return Err(EngineError::UnencryptedNotAllowed { location });
            }
            mac.verify(public_mac)?;
            (None, None)
        } else {
            let pass = passphrase()?;
            let remembered = memory.as_ref().and_then(SettingsMemory::key_slot);
            let unlocked = unlock(storage.as_ref(), &pass, &repository_id, &location, &policy.kdf_limit, remembered)?;
            mac.verify(|b| unlocked.master.config_mac(b))?;
            (Some(unlocked.master), Some(unlocked.slot))
        };
        if let Some(m) = &mut memory {
            m.remember(&config, &location, slot)?;
        }
        Self::assemble(storage, config, master)
    }

    /// Records this repository's settings in `dir` (as [`OpenPolicy::settings_dir`]
    /// does on open), so that a later change of them is refused; for a
    /// repository just made with [`Repository::init`].
    pub fn remember_settings(&self, dir: &Path) -> Result<()> {
        SettingsMemory::read(dir, &self.repository_id)?.remember(&self.config, &self.location(), None)
    }

    fn assemble(storage: Arc<dyn Storage>, config: RepoConfig, master: Option<MasterKey>) -> Result<Self> {
        let repository_id = config.repository_id()?;
        let algo = Algorithm::from_name(&config.encryption)
            .ok_or_else(|| EngineError::Other(format!("unknown encryption `{}`", config.encryption)))?;
        let (envelope, id_key) = match &master {
            Some(m) => (Envelope::new(algo, m).map_err(crypto_err)?, m.chunk_id_key()),
            None => (Envelope::plaintext(), ChunkIdKey::public()),
        };
        let chunker = params(config.chunker);
        vger_chunker::Chunker::new(chunker)
            .map_err(|e| EngineError::Format(vger_format::FormatError::corrupt("repository config", e)))?;
        let compression = config
            .compression
            .parse::<Codec>()
            .map_err(|e| EngineError::Format(vger_format::FormatError::corrupt("repository config", e)))?;
        Ok(Self {
            storage,
            config,
            repository_id,
            envelope: Arc::new(envelope),
            id_key,
            master,
            chunker,
            compression,
            index_cache_dir: None,
            index_cache_threshold: crate::index_cache::CacheThreshold::DEFAULT,
        })
    }

    /// Keeps a local copy of the chunk index in `dir` (one file per
    /// repository, see `index_cache`), so that loading the index fetches
    /// only the segments added since; `None` loads every segment.
    pub fn with_index_cache(mut self, dir: Option<PathBuf>) -> Self {
        self.index_cache_dir = dir;
        self
    }

    pub fn index_cache_dir(&self) -> Option<&Path> {
        self.index_cache_dir.as_deref()
    }

    /// Caches the index of even the smallest repository (tests).
    #[doc(hidden)]
    pub fn with_index_cache_always(mut self) -> Self {
        self.index_cache_threshold = crate::index_cache::CacheThreshold { segments: 0, chunks: 0 };
        self
    }

    pub(crate) fn index_cache_threshold(&self) -> crate::index_cache::CacheThreshold {
        self.index_cache_threshold
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn location(&self) -> String {
        self.storage.describe()
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    pub fn repository_id(&self) -> &[u8; 32] {
        &self.repository_id
    }

    pub fn envelope(&self) -> &Arc<Envelope> {
        &self.envelope
    }

    pub fn chunk_id_key(&self) -> &ChunkIdKey {
        &self.id_key
    }

    pub fn master_key(&self) -> Option<&MasterKey> {
        self.master.as_ref()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.envelope.algorithm()
    }

    pub fn chunker_params(&self) -> ChunkerParams {
        self.chunker
    }

    /// The largest plaintext a blob of type `ty` may have: a data chunk's
    /// is the chunker's maximum, a tree object's [`MAX_TREE_OBJECT`].
    pub fn blob_cap(&self, ty: vger_crypto::ObjectType) -> usize {
        match ty {
            vger_crypto::ObjectType::TreeChunk => MAX_TREE_OBJECT,
            _ => self.chunker.max_size as usize,
        }
    }

    /// The largest plaintext of any blob, data chunk or tree object.
    pub fn max_blob_size(&self) -> usize {
        MAX_TREE_OBJECT.max(self.chunker.max_size as usize)
    }

    pub fn default_compression(&self) -> Codec {
        self.compression
    }

    pub fn pack_target_size(&self) -> u64 {
        self.config.pack_target_size.clamp(1 << 20, 1 << 30)
    }
}

pub(crate) fn crypto_err(e: CryptoError) -> EngineError {
    EngineError::Format(vger_format::FormatError::crypto("key", e))
}

/// Writes a new key slot wrapping `master` with `passphrase`.
pub(crate) fn write_key_slot(
    storage: &dyn Storage,
    master: &MasterKey,
    passphrase: &[u8],
    repository_id: &[u8; 32],
    kdf: KdfParams,
    label: &str,
) -> Result<KeySlotId> {
    let wrapped = wrap_master_key(master, passphrase, repository_id, kdf).map_err(crypto_err)?;
    let slot = KeySlot::from_wrapped(&wrapped, now_rfc3339(), hostname(), username(), label.to_string());
    let id = KeySlotId(random_id()?);
    storage.put_new(&id.storage_key(), &slot.encode()?)?;
    Ok(id)
}

/// All readable key slots. Unparseable slots are reported as errors only if
/// no slot can be read at all.
pub(crate) fn list_key_slots(storage: &dyn Storage) -> Result<Vec<(KeySlotId, KeySlot)>> {
    let mut out = Vec::new();
    let mut first_error = None;
    for obj in storage.list(KEYS_PREFIX)? {
        let Some(id) = KeySlotId::from_storage_key(&obj.key) else { continue };
        match storage.get(&obj.key).map_err(EngineError::from).and_then(|b| Ok(KeySlot::decode(&b)?)) {
            Ok(slot) => out.push((id, slot)),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if out.is_empty() {
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    out.sort_by(|a, b| a.1.created.cmp(&b.1.created));
    Ok(out)
}
