//! Index segments: which chunk lives where (docs/format.md, section 7).

use serde::{Deserialize, Serialize};

use crate::id::{ChunkId, PackId, SegmentId};

pub const INDEX_SEGMENT_VERSION: u32 = 1;

/// Where one blob sits inside its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    pub id: ChunkId,
    /// Object type tag of the blob's envelope (1 data, 2 tree).
    #[serde(rename = "type")]
    pub blob_type: u8,
    /// Offset of the envelope in the pack.
    pub offset: u64,
    /// Length of the envelope.
    pub length: u32,
    /// Plaintext length of the chunk.
    pub raw_length: u32,
}

/// One pack and the blobs it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    pub id: PackId,
    pub size: u64,
    pub blobs: Vec<BlobEntry>,
    /// Unix seconds when the pack was stored (or adopted into the index):
    /// maintenance never deletes a pack younger than its grace period.
    #[serde(default)]
    pub created: u64,
}

/// A set of packs, written by one backup (or merged by maintenance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IndexSegment {
    pub version: u32,
    pub packs: Vec<PackEntry>,
    /// Segments this one replaces (compaction); readers ignore those.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supersedes: Vec<SegmentId>,
}
