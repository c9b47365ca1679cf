/// The key of the keyed hash that names chunks: `BLAKE3-keyed(id_key, data)`.
///
/// Keyed so that a repository does not reveal whether it holds a known file.
/// BLAKE3 was measured at about 3x the speed of BLAKE2b-512 on our machines.
#[derive(Clone)]
pub struct ChunkIdKey {
    key: [u8; 32],
}

impl ChunkIdKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The key used by repositories with encryption `none`: all zeroes, so
    /// chunk IDs are still checksums, but not secret.
    pub fn public() -> Self {
        Self { key: [0u8; 32] }
    }

    pub fn chunk_id(&self, data: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.key, data).as_bytes()
    }
}

impl std::fmt::Debug for ChunkIdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkIdKey(..)")
    }
}
