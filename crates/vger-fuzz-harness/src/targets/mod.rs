//! The target bodies, one module per area of the format.

pub(crate) mod format;
pub(crate) mod index;
pub(crate) mod journal;
pub(crate) mod pack;
pub(crate) mod server;
pub(crate) mod snapshot;

/// What the bytes after a target's mode byte are.
pub(crate) enum Input<'a> {
    /// An object as stored.
    Stored(&'a [u8]),
    /// The plaintext behind the envelope, for the target to seal.
    Plaintext(&'a [u8]),
}

impl<'a> Input<'a> {
    pub(crate) fn read(data: &'a [u8]) -> Self {
        match data.split_first() {
            Some((mode, rest)) if mode & 1 == 1 => Input::Plaintext(rest),
            Some((_, rest)) => Input::Stored(rest),
            None => Input::Stored(&[]),
        }
    }
}

/// The object a target stores at `identity`: the input as stored, or its
/// plaintext sealed there as an object of type `ty`.
pub(crate) fn stored_or_sealed(
    f: &crate::fixture::Fixture,
    data: &[u8],
    ty: vger_crypto::ObjectType,
    identity: &[u8],
) -> Vec<u8> {
    match Input::read(data) {
        Input::Stored(bytes) => bytes.to_vec(),
        Input::Plaintext(plaintext) => f.seal(ty, identity, plaintext),
    }
}

/// The error of a refused input, as the target's outcome.
pub(crate) fn refused(e: impl std::fmt::Display) -> String {
    e.to_string()
}
