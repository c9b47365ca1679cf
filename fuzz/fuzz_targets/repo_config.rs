#![no_main]
//! `repo_config`: see `vger_fuzz_harness` for what it feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vger_fuzz_harness::target("repo_config").map(|t| (t.run)(data));
});
