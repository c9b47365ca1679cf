//! Problems an operation reports without failing: warnings of a backup or
//! restore, findings of check, what compact left alone. The engine's words
//! name no command; a front end matches on the variant to add its own
//! advice (a command to run, a button), and shows [`Notice::Text`] as it is.

use std::fmt;

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// An index segment could not be read and the operation went on
    /// without it (rebuilding the index from the packs repairs this).
    SegmentSkipped { segment: String, why: String },
    /// `check` found an index segment it cannot read (rebuilding the index
    /// from the packs repairs this).
    SegmentUnreadable { segment: String, why: String },
    /// Packs that no index segment names: left by an interrupted backup or
    /// compact, for compact to adopt or remove.
    UnindexedPacks { count: usize },
    /// compact found a pack whose content does not match its id and left
    /// it alone (a check reports what it affects).
    DamagedPackLeft { pack: String },
    /// Anything else; the text says it all.
    Text(String),
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::SegmentSkipped { segment, why } => {
                write!(f, "index segment {segment} is unreadable ({why}); continuing without it")
            }
            Notice::SegmentUnreadable { segment, why } => write!(f, "index segment {segment} is unreadable: {why}"),
            Notice::UnindexedPacks { count } => {
                write!(f, "{count} pack(s) are not in the index (left by an interrupted backup or compact)")
            }
            Notice::DamagedPackLeft { pack } => {
                write!(f, "pack {pack} is damaged (content does not match its id); not repacked")
            }
            Notice::Text(text) => f.write_str(text),
        }
    }
}

/// As its text: reports stay lists of strings in JSON.
impl Serialize for Notice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl From<String> for Notice {
    fn from(text: String) -> Self {
        Notice::Text(text)
    }
}
