#![no_main]
//! `resume_journal`: see `vger_fuzz_harness` for what it feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vger_fuzz_harness::target("resume_journal").map(|t| (t.run)(data));
});
