//! What each token permission allows. The server enforces it; it lives
//! here so that clients and documentation read the same table.

use serde::{Deserialize, Serialize};

/// Key prefixes an `append` token may overwrite and delete: the objects a
/// backup itself must replace or remove. Everything else (config, packs,
/// index segments, snapshots) is create-only for it. vger-server further
/// lets it replace or delete only the locks it wrote itself.
pub const APPEND_MUTABLE_PREFIXES: &[&str] = &["locks/"];

/// Key prefixes only a `full` token may write at all: key slots. A backup
/// never writes one, and a slot planted by a stolen client could make
/// every open of the repository try a costly or hostile key derivation.
pub const FULL_ONLY_PREFIXES: &[&str] = &["keys/"];

/// A token's permission, from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// GET, HEAD, list, stats, verify-packs.
    Read,
    /// Read, create new objects (except under [`FULL_ONLY_PREFIXES`]),
    /// server-side repack (it only creates a pack), and replace or delete
    /// under [`APPEND_MUTABLE_PREFIXES`].
    Append,
    /// Anything on its repositories.
    Full,
    /// Full, plus server-wide operations (`GET /?stats`).
    Admin,
}

/// What a request wants to do, as far as permissions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    Read,
    /// Write an object that does not exist yet.
    Create {
        key: &'a str,
    },
    /// Write over an existing object.
    Replace {
        key: &'a str,
    },
    Delete {
        key: &'a str,
    },
    /// Build a new pack from existing ones.
    Repack,
    /// Server-wide statistics.
    ServerStats,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Append => "append",
            Permission::Full => "full",
            Permission::Admin => "admin",
        }
    }

    pub fn allows(self, op: Operation<'_>) -> bool {
        let mutable = |key: &str| APPEND_MUTABLE_PREFIXES.iter().any(|p| key.starts_with(p));
        let full_only = |key: &str| FULL_ONLY_PREFIXES.iter().any(|p| key.starts_with(p));
        match op {
            Operation::Read => true,
            Operation::Repack => self >= Permission::Append,
            Operation::Create { key } => self >= Permission::Full || (self == Permission::Append && !full_only(key)),
            Operation::Replace { key } | Operation::Delete { key } => {
                self >= Permission::Full || (self == Permission::Append && mutable(key))
            }
            Operation::ServerStats => self == Permission::Admin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use Operation::*;
        let snapshot = "snapshots/ab";
        let lock = "locks/ab";
        let cases = [
            (Permission::Read, [true, false, false, false, false, false, false, false]),
            (Permission::Append, [true, true, false, false, true, false, true, false]),
            (Permission::Full, [true, true, true, true, true, true, true, false]),
            (Permission::Admin, [true, true, true, true, true, true, true, true]),
        ];
        for (perm, want) in cases {
            let ops = [
                Read,
                Create { key: snapshot },
                Create { key: "keys/ab" },
                Replace { key: snapshot },
                Replace { key: lock },
                Delete { key: snapshot },
                Repack,
                ServerStats,
            ];
            let got: Vec<bool> = ops.iter().map(|op| perm.allows(*op)).collect();
            assert_eq!(got, want, "{perm:?}");
        }
        assert!(Permission::Append.allows(Delete { key: lock }));
        assert!(!Permission::Append.allows(Delete { key: "locksmith" }));
        assert!(!Permission::Append.allows(Replace { key: "config" }));
        assert!(!Permission::Append.allows(Replace { key: "index/ab" }));
        assert!(!Permission::Append.allows(Delete { key: "keys/ab" }));
        assert!(!Permission::Append.allows(Replace { key: "keys/ab" }));
    }
}
