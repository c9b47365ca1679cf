//! The keys a vger repository is made of (`docs/format.md`, section 1),
//! which are the only keys the server stores. Anything else (`a/a/a/...`,
//! names that only look like ids) is refused before it touches the disk,
//! so a client cannot fill the inodes with empty objects at made-up keys
//! or hide data beside the repository.

use vger_format::id::{CONFIG_KEY, INDEX_PREFIX, KEYS_PREFIX, LOCKS_PREFIX, PACKS_PREFIX, SNAPSHOTS_PREFIX};

/// What an object of a repository is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Config,
    /// `keys/<64 hex>`
    KeySlot,
    /// `packs/<first 2 hex>/<64 hex>`
    Pack,
    /// `index/<64 hex>`
    IndexSegment,
    /// `snapshots/<64 hex>`
    Snapshot,
    /// `locks/<64 hex>`
    Lock,
}

/// The kind of object `key` names, or `None` if no vger client writes
/// such a key. Ids are 64 lower-case hex digits, as clients write them,
/// so one object has exactly one key.
pub fn classify(key: &str) -> Option<KeyKind> {
    if key == CONFIG_KEY {
        return Some(KeyKind::Config);
    }
    if let Some(rest) = key.strip_prefix(PACKS_PREFIX) {
        let (shard, id) = rest.split_once('/')?;
        return (is_id(id) && id.get(..2) == Some(shard)).then_some(KeyKind::Pack);
    }
    let flat = [
        (KEYS_PREFIX, KeyKind::KeySlot),
        (INDEX_PREFIX, KeyKind::IndexSegment),
        (SNAPSHOTS_PREFIX, KeyKind::Snapshot),
        (LOCKS_PREFIX, KeyKind::Lock),
    ];
    flat.into_iter().find_map(|(prefix, kind)| key.strip_prefix(prefix).filter(|id| is_id(id)).map(|_| kind))
}

/// 64 lower-case hex digits: a 32-byte id as vger renders it.
pub fn is_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

    #[test]
    fn the_repository_keys_and_nothing_else() {
        let cases = [
            ("config".to_owned(), Some(KeyKind::Config)),
            (format!("keys/{ID}"), Some(KeyKind::KeySlot)),
            (format!("packs/ab/{ID}"), Some(KeyKind::Pack)),
            (format!("index/{ID}"), Some(KeyKind::IndexSegment)),
            (format!("snapshots/{ID}"), Some(KeyKind::Snapshot)),
            (format!("locks/{ID}"), Some(KeyKind::Lock)),
            (format!("packs/cd/{ID}"), None),
            (format!("packs/{ID}"), None),
            (format!("packs/ab/{ID}/x"), None),
            (format!("snapshots/{}", ID.to_uppercase()), None),
            (format!("snapshots/{}", &ID[1..]), None),
            (format!("snapshots/{ID}0"), None),
            (format!("snapshots/{ID}/x"), None),
            (format!("other/{ID}"), None),
            ("configx".to_owned(), None),
            ("a/a/a/a".to_owned(), None),
            ("locks/l1".to_owned(), None),
            (String::new(), None),
        ];
        for (key, want) in cases {
            assert_eq!(classify(&key), want, "{key}");
        }
    }
}
