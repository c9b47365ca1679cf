//! The failures a front end tells apart, as the application layer reports
//! them: a lock held by another command (by whom, since when), a wrong
//! passphrase, no repository, a passphrase nobody can give; and the words
//! of each name no command (a front end adds its own).

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::collections::HashMap;
use std::path::Path;

use vger_app::backup::BackupRequest;
use vger_app::events::Silent;
use vger_app::{App, AppError, Problem};
use vger_config::{Config, Environment};
use vger_engine::lock::RepoLock;
use vger_engine::repository::{InitOptions, Repository};

fn app(dir: &Path, encryption: &str) -> App {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"a").unwrap();
    let yaml = format!(
        "repositories:\n  - label: r\n    url: \"{}\"\n    encryption: {encryption}\nsources:\n  - label: data\n    path: \"{}\"\ncache_dir: \"{}\"\n",
        dir.join("repo").display(),
        src.display(),
        dir.join("cache").display()
    );
    let path = dir.join("vger.yaml");
    let config = Config::from_yaml_str_in(&yaml, &path, &Environment::from_map(HashMap::new(), dir)).unwrap();
    App::new(config, path)
}

fn init(app: &App, passphrase: &str) {
    let repo = &app.config.repositories[0];
    let opts = InitOptions {
        kdf: vger_crypto::KdfParams::insecure_fast(),
        ..vger_app::init::init_options(&app.config, repo).unwrap()
    };
    Repository::init(app.storage(repo, true).unwrap(), Some(passphrase.as_bytes().to_vec()), opts).unwrap();
}

/// No message of the application layer or the engine tells the user to
/// run a `vger` command: that is the CLI's wording.
fn assert_names_no_command(e: &AppError) {
    let text = vger_app::one_line(e);
    assert!(!text.contains("`vger "), "{text}");
}

#[test]
fn a_lock_conflict_says_who_holds_it_and_since_when() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "{ passphrase: pw-one }");
    init(&app, "pw-one");
    let repo = &app.config.repositories[0];
    let holder = RepoLock::exclusive(&app.open(repo).unwrap(), "compact").unwrap();
    let err = app.backup(repo, &BackupRequest::default(), &Silent, &mut Vec::new()).unwrap_err();
    match err.problem() {
        Problem::Locked(record) => {
            assert_eq!(record.command, "compact");
            assert_eq!(record.pid, std::process::id());
            assert!(record.created > 0);
        }
        other => panic!("expected a lock conflict, got {other:?}: {err}"),
    }
    assert_names_no_command(&err);
    drop(holder);
    app.backup(repo, &BackupRequest::default(), &Silent, &mut Vec::new()).unwrap();
}

#[test]
fn passphrase_and_repository_problems_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let missing = app(dir.path(), "{ passphrase: pw-one }");
    let repo = &missing.config.repositories[0];
    let err = missing.open(repo).err().unwrap();
    assert!(matches!(err.problem(), Problem::NotARepository), "{err}");
    assert_names_no_command(&err);

    init(&missing, "pw-one");
    let wrong = app(dir.path(), "{ passphrase: pw-two }");
    let err = wrong.open(&wrong.config.repositories[0]).err().unwrap();
    assert!(matches!(err.problem(), Problem::WrongPassphrase), "{err}");

    // No passphrase in the config and no prompt: nobody can give one.
    let none = app(dir.path(), "{ mode: auto }");
    let err = none.open(&none.config.repositories[0]).err().unwrap();
    assert!(matches!(err.problem(), Problem::PassphraseRequired), "{err}");
    assert_names_no_command(&err);

    // A prompt (a dialog) answers.
    let prompted = app(dir.path(), "{ mode: auto }").with_prompt(|request| {
        assert_eq!(request.repository.label(), "r");
        Ok(Some(b"pw-one".to_vec()))
    });
    prompted.open(&prompted.config.repositories[0]).unwrap();
}

#[test]
fn an_empty_folder_is_not_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("repo")).unwrap();
    let app = app(dir.path(), "{ passphrase: pw }");
    let err = app.open(&app.config.repositories[0]).err().unwrap();
    assert!(matches!(err.problem(), Problem::NotARepository), "{err}");
    assert_names_no_command(&err);
}
