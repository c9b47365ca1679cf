//! Writes the fuzz fixture repository (`fuzz/fixture/repo`) and the seed
//! corpus (`fuzz/corpus/<target>/seed-*`) from real objects. Run it again
//! when the repository format changes:
//!
//! ```sh
//! cargo run -p vger-fuzz-harness --bin vger-fuzz-seeds [FUZZ_DIR]
//! ```

use std::path::PathBuf;

fn main() {
    let dir = std::env::args_os().nth(1).map(PathBuf::from).unwrap_or_else(vger_fuzz_harness::fixture::fuzz_dir);
    match vger_fuzz_harness::seeds::write_all(&dir) {
        Ok(n) => println!("wrote the fixture and {n} seeds under {}", dir.display()),
        Err(e) => {
            eprintln!("vger-fuzz-seeds: {e}");
            std::process::exit(1);
        }
    }
}
