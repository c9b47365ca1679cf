//! `sources:` in its three spellings, normalised to a list of [`SourceConfig`].
//!
//! - simple: a list of paths, which together make ONE source;
//! - rich: a list of maps, one source each;
//! - mixed: maps and paths, where each path is its own source.

use std::fmt;
use std::path::PathBuf;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::SourceConfig;

enum SourceEntry {
    Path(PathBuf),
    Rich(Box<SourceConfig>),
}

impl<'de> Deserialize<'de> for SourceEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = SourceEntry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a path or a source map (with `path` or `paths`)")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<SourceEntry, E> {
        Ok(SourceEntry::Path(PathBuf::from(value)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SourceEntry, A::Error> {
        SourceConfig::deserialize(MapAccessDeserializer::new(map)).map(|source| SourceEntry::Rich(Box::new(source)))
    }
}

/// Serde helper for `Config::sources`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<SourceConfig>, D::Error> {
    deserializer.deserialize_any(SourcesVisitor)
}

struct SourcesVisitor;

impl<'de> Visitor<'de> for SourcesVisitor {
    type Value = Vec<SourceConfig>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of paths or of source maps")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<SourceConfig>, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<SourceConfig>, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = seq.next_element::<SourceEntry>()? {
            entries.push(entry);
        }
        Ok(normalise(entries))
    }
}

fn normalise(entries: Vec<SourceEntry>) -> Vec<SourceConfig> {
    let all_paths = entries.iter().all(|e| matches!(e, SourceEntry::Path(_)));
    if all_paths && entries.len() > 1 {
        let paths = entries
            .into_iter()
            .filter_map(|e| match e {
                SourceEntry::Path(path) => Some(path),
                SourceEntry::Rich(_) => None,
            })
            .collect();
        return vec![SourceConfig { paths, ..SourceConfig::default() }];
    }
    entries
        .into_iter()
        .map(|entry| match entry {
            SourceEntry::Path(path) => SourceConfig { path: Some(path), ..SourceConfig::default() },
            SourceEntry::Rich(source) => *source,
        })
        .collect()
}
