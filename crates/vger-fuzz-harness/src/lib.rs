//! The bodies of vger's fuzz targets, kept in the workspace so that a
//! plain `cargo test` (stable, no libFuzzer) replays every file of
//! `fuzz/corpus/<target>/` through exactly the code the fuzzer runs.
//!
//! - [`TARGETS`]: one function per decoder of repository data and of
//!   vger-server's input, each taking the fuzzer's bytes. A target returns
//!   `Ok` when the input decoded, `Err(why)` when it was refused with an
//!   error; a panic, a hang or an allocation past a cap is a finding.
//! - [`fixture`]: the fixed test repository the targets are aimed at
//!   (`fuzz/fixture/repo`, a real repository sealed with a fixed master
//!   key), so that a target can seal fuzzed plaintext and reach the
//!   decoders behind the AEAD.
//! - [`seeds`]: the seed corpus, made from the fixture's real objects by
//!   the `vger-fuzz-seeds` binary, which also writes the fixture.
//!
//! Most targets read their first byte as a mode: even, the rest is an
//! object as stored (the envelope and all: the fuzzer works on the
//! framing and the AEAD refuses the rest); odd, the rest is the plaintext
//! behind the envelope, which the target seals with the fixture's key
//! under the right type and identity before handing it to the engine.
//!
//! ```no_run
//! for target in vger_fuzz_harness::TARGETS {
//!     let outcome = (target.run)(b"\x00not an object");
//!     assert!(outcome.is_err(), "{} took garbage", target.name);
//! }
//! ```

pub mod fixture;
pub mod memory;
pub mod seeds;
// A target reports a broken property by panicking: the panic is what the
// fuzzer catches and keeps as a finding.
#[allow(clippy::panic)]
mod targets;

/// `Ok` when the input decoded, `Err` with the error when it was refused.
pub type Outcome = Result<(), String>;

/// One fuzz target: its name (the file `fuzz/fuzz_targets/<name>.rs` and
/// the corpus folder `fuzz/corpus/<name>/`) and its body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]) -> Outcome,
}

/// Every target, in the order `fuzz/run` runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "envelope", run: targets::format::envelope },
    Target { name: "compressed_payload", run: targets::format::compressed_payload },
    Target { name: "pack_trailer", run: targets::pack::pack_trailer },
    Target { name: "pack", run: targets::pack::pack },
    Target { name: "index_segment", run: targets::index::index_segment },
    Target { name: "index_cache", run: targets::index::index_cache },
    Target { name: "snapshot", run: targets::snapshot::snapshot },
    Target { name: "tree", run: targets::snapshot::tree },
    Target { name: "repo_config", run: targets::format::repo_config },
    Target { name: "key_slot", run: targets::format::key_slot },
    Target { name: "lock", run: targets::snapshot::lock },
    Target { name: "resume_journal", run: targets::journal::resume_journal },
    Target { name: "storage_key", run: targets::format::storage_key },
    Target { name: "server_route", run: targets::server::server_route },
    Target { name: "server_tokens", run: targets::server::server_tokens },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
