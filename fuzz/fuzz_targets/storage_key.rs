#![no_main]
//! `storage_key`: see `vger_fuzz_harness` for what it feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vger_fuzz_harness::target("storage_key").map(|t| (t.run)(data));
});
