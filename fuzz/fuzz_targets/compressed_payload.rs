#![no_main]
//! `compressed_payload`: see `vger_fuzz_harness` for what it feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vger_fuzz_harness::target("compressed_payload").map(|t| (t.run)(data));
});
