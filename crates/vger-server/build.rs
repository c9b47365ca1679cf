//! `--version` names the git commit: the shared build script.
include!("../../build/git_version.rs");
