#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use vger_config::{Config, ConfigError, Environment};

/// An environment with only `HOME=/home/me` and `TOKEN=secret`, working folder `/work`.
pub fn env() -> Environment {
    env_with(&[])
}

pub fn env_with(extra: &[(&str, &str)]) -> Environment {
    let mut vars: HashMap<String, String> = [("HOME", "/home/me"), ("TOKEN", "secret")]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    vars.shrink_to_fit();
    Environment::from_map(vars, "/work")
}

pub fn parse(yaml: &str) -> Result<Config, ConfigError> {
    Config::from_yaml_str_in(yaml, Path::new("vger.yaml"), &env())
}

/// The one-line message of a config that must fail.
pub fn error(yaml: &str) -> String {
    match parse(yaml) {
        Ok(config) => format!("unexpectedly parsed: {config:?}"),
        Err(err) => err.to_string(),
    }
}

pub const REPO: &str = "repositories:\n  - url: /srv/repo\n";
