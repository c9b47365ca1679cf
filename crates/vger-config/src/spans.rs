//! Where things are in the file, for errors found after parsing.
//!
//! The strict model carries no positions, so the same text is read a second
//! time into this skeleton, which records the location of only the nodes
//! that semantic checks point at.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A 1-based `(line, column)`.
pub(crate) type Position = (u64, u64);

#[derive(Default, Deserialize)]
pub(crate) struct ConfigSpans {
    repositories: Option<Spanned<Vec<Spanned<RepositorySpans>>>>,
    sources: Option<Spanned<Vec<Spanned<IgnoredAny>>>>,
    chunker: Option<Spanned<IgnoredAny>>,
    schedule: Option<Spanned<IgnoredAny>>,
}

#[derive(Deserialize)]
struct RepositorySpans {
    url: Option<Spanned<IgnoredAny>>,
    schedule: Option<Spanned<IgnoredAny>>,
}

fn at<T>(spanned: &Spanned<T>) -> Option<Position> {
    let location = spanned.referenced;
    (location.line() > 0).then(|| (location.line(), location.column()))
}

impl ConfigSpans {
    /// Reads the skeleton; unknown positions when the text does not fit it.
    pub(crate) fn read(text: &str) -> Self {
        serde_saphyr::from_str(text).unwrap_or_default()
    }

    pub(crate) fn repositories(&self) -> Option<Position> {
        self.repositories.as_ref().and_then(at)
    }

    fn repository_spans(&self, index: usize) -> Option<&Spanned<RepositorySpans>> {
        self.repositories.as_ref()?.value.get(index)
    }

    pub(crate) fn repository(&self, index: usize) -> Option<Position> {
        self.repository_spans(index).and_then(at)
    }

    pub(crate) fn repository_url(&self, index: usize) -> Option<Position> {
        let repo = self.repository_spans(index)?;
        repo.value.url.as_ref().and_then(at).or_else(|| at(repo))
    }

    pub(crate) fn repository_schedule(&self, index: usize) -> Option<Position> {
        let repo = self.repository_spans(index)?;
        repo.value.schedule.as_ref().and_then(at).or_else(|| at(repo))
    }

    pub(crate) fn source(&self, index: usize) -> Option<Position> {
        let sources = self.sources.as_ref()?;
        sources.value.get(index).and_then(at).or_else(|| at(sources))
    }

    pub(crate) fn chunker(&self) -> Option<Position> {
        self.chunker.as_ref().and_then(at)
    }

    pub(crate) fn schedule(&self) -> Option<Position> {
        self.schedule.as_ref().and_then(at)
    }
}
