#![no_main]
//! `snapshot`: see `vger_fuzz_harness` for what it feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vger_fuzz_harness::target("snapshot").map(|t| (t.run)(data));
});
