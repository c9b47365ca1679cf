#![no_main]
//! `key_slot`: see `vger_fuzz_harness` for what it feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vger_fuzz_harness::target("key_slot").map(|t| (t.run)(data));
});
