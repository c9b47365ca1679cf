//! Lookup order, `${VAR}` expansion and `env_file`, against temporary folders.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{env_with, REPO};
use vger_config::{Config, ConfigError, Environment};

struct Layout {
    _root: tempfile::TempDir,
    cwd: PathBuf,
    home: PathBuf,
    xdg: PathBuf,
    system: PathBuf,
}

fn layout() -> Layout {
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let path = root.path().join(name);
        fs::create_dir_all(&path).unwrap();
        path
    };
    Layout {
        cwd: dir("cwd"),
        home: dir("home"),
        xdg: dir("xdg"),
        system: dir("etc/vger").join("config.yaml"),
        _root: root,
    }
}

impl Layout {
    fn env(&self, vars: &[(&str, &Path)]) -> Environment {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), v.display().to_string())).collect();
        let mut env = Environment::from_map(vars, &self.cwd);
        env.system_config = self.system.clone();
        env
    }
}

fn write(path: &Path, text: &str) -> PathBuf {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    path.to_path_buf()
}

#[test]
fn lookup_order() {
    let l = layout();
    let system = write(&l.system, REPO);
    let home_config = write(&l.home.join(".config/vger/config.yaml"), REPO);
    let xdg_config = write(&l.xdg.join("vger/config.yaml"), REPO);
    let local = write(&l.cwd.join("vger.yaml"), REPO);
    let named = write(&l.cwd.join("named.yaml"), REPO);
    let explicit = write(&l.cwd.join("explicit.yaml"), REPO);

    let all = l.env(&[("HOME", &l.home), ("XDG_CONFIG_HOME", &l.xdg), ("VGER_CONFIG", Path::new("named.yaml"))]);
    assert_eq!(Config::locate_in(Some(Path::new("explicit.yaml")), &all).unwrap(), explicit);
    assert_eq!(Config::locate_in(None, &all).unwrap(), named);

    let no_named = l.env(&[("HOME", &l.home), ("XDG_CONFIG_HOME", &l.xdg)]);
    assert_eq!(Config::locate_in(None, &no_named).unwrap(), local);
    fs::remove_file(&local).unwrap();
    assert_eq!(Config::locate_in(None, &no_named).unwrap(), xdg_config);

    let home_only = l.env(&[("HOME", &l.home)]);
    assert_eq!(Config::locate_in(None, &home_only).unwrap(), home_config);
    fs::remove_file(&home_config).unwrap();
    assert_eq!(Config::locate_in(None, &home_only).unwrap(), system);

    fs::remove_file(&system).unwrap();
    let err = Config::locate_in(None, &home_only).unwrap_err();
    let ConfigError::NotFound { searched } = &err else { unreachable!("{err}") };
    assert_eq!(searched, &[l.cwd.join("vger.yaml"), l.home.join(".config/vger/config.yaml"), l.system.clone()]);
    assert!(err.to_string().starts_with("no config file found (searched "), "{err}");
    assert!(err.to_string().ends_with("; run `vger config` to write a starter file"), "{err}");
}

#[test]
fn a_named_file_that_is_missing_is_an_error() {
    let l = layout();
    write(&l.cwd.join("vger.yaml"), REPO);
    let env = l.env(&[("VGER_CONFIG", Path::new("gone.yaml"))]);
    let err = Config::locate_in(None, &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: config file not found (named by VGER_CONFIG); run `vger config` to write a starter file",
            l.cwd.join("gone.yaml").display()
        )
    );
    let err = Config::locate_in(Some(Path::new("nope.yaml")), &l.env(&[])).unwrap_err();
    assert!(err.to_string().contains("(named by --config)"), "{err}");
}

#[test]
fn load_reads_and_reports_the_path() {
    let l = layout();
    let path = write(&l.cwd.join("vger.yaml"), "repositories:\n  - url: ${REPO_URL}\n");
    let env = l.env(&[("REPO_URL", Path::new("/srv/backups"))]);
    let loaded = Config::load_in(None, &env).unwrap();
    assert_eq!(loaded.path, path);
    assert_eq!(loaded.config.repositories[0].url, "/srv/backups");
}

#[test]
fn expansion_set_default_and_dollar_escape() {
    let yaml = "repositories:
  - url: ${BASE:-/srv}/repo
    access_token: ${TOKEN}
    secret_access_key: pa$$word
";
    let config = Config::from_yaml_str_in(yaml, Path::new("vger.yaml"), &env_with(&[])).unwrap();
    let repo = &config.repositories[0];
    assert_eq!(repo.url, "/srv/repo");
    assert_eq!(repo.access_token.as_deref(), Some("secret"));
    assert_eq!(repo.secret_access_key.as_deref(), Some("pa$word"));

    let env = env_with(&[("BASE", "/mnt")]);
    let config = Config::from_yaml_str_in(yaml, Path::new("vger.yaml"), &env).unwrap();
    assert_eq!(config.repositories[0].url, "/mnt/repo");
}

#[test]
fn unset_variable_is_reported_with_file_and_line() {
    let yaml = "# ${IN_A_COMMENT} is fine\nrepositories:\n  - url: /srv\n    secret_access_key: ${AWS_SECRET}\n";
    let err = Config::from_yaml_str_in(yaml, Path::new("conf/vger.yaml"), &env_with(&[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "conf/vger.yaml:4:24: environment variable `AWS_SECRET` is not set; set it, add it to an `env_file`, or write `${AWS_SECRET:-default}`"
    );
    assert_eq!(err.line(), Some(4));
}

#[test]
fn env_file_feeds_expansion_without_overriding_the_environment() {
    let l = layout();
    write(&l.cwd.join("secrets.env"), "# comment\n\nBUCKET=photos\nTOKEN=\"from-file\"\n");
    write(&l.cwd.join("more.env"), "REGION='eu-west-1'\n");
    let yaml = "env_file: [secrets.env, more.env]
repositories:
  - url: s3://s3.example.com/${BUCKET}
    region: ${REGION}
    access_token: ${TOKEN}
";
    let path = write(&l.cwd.join("vger.yaml"), yaml);
    let env = l.env(&[("TOKEN", Path::new("from-env"))]);
    let config = Config::from_yaml_str_in(yaml, &path, &env).unwrap();
    let repo = &config.repositories[0];
    assert_eq!(repo.url, "s3://s3.example.com/photos");
    assert_eq!(repo.region.as_deref(), Some("eu-west-1"));
    assert_eq!(repo.access_token.as_deref(), Some("from-env"));
    assert_eq!(config.env_file, [l.cwd.join("secrets.env"), l.cwd.join("more.env")]);

    let single = "env_file: secrets.env\nrepositories:\n  - url: /srv/${BUCKET}\n";
    let config = Config::from_yaml_str_in(single, &path, &env).unwrap();
    assert_eq!(config.repositories[0].url, "/srv/photos");
}

#[test]
fn env_file_problems() {
    let l = layout();
    let path = l.cwd.join("vger.yaml");
    let err = Config::from_yaml_str_in("env_file: missing.env\n", &path, &l.env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("{}: cannot read", l.cwd.join("missing.env").display())));

    write(&l.cwd.join("bad.env"), "OK=1\nnot a pair\n");
    let err = Config::from_yaml_str_in("env_file: bad.env\n", &path, &l.env(&[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:2: expected `KEY=VALUE`, found `not a pair`", l.cwd.join("bad.env").display())
    );
}
