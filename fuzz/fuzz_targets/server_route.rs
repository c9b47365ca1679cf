#![no_main]
//! `server_route`: see `vger_fuzz_harness` for what it feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vger_fuzz_harness::target("server_route").map(|t| (t.run)(data));
});
