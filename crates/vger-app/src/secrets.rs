//! vger's secrets and the commands it starts for the user (hooks, command
//! dumps, notifications' templates): those commands do not inherit the
//! passphrase or storage credentials from vger's environment unless the
//! config lists them in `pass_secrets`, and a command vger shows (in a log
//! line or an error) has every known secret value masked.
//!
//! The secrets are the variables vger reads secrets from
//! ([`SECRET_VARIABLES`]) and the values of the config's `passphrase`,
//! `secret_access_key` and `access_token` fields; a variable holding one
//! of those values (a config that says `passphrase: ${DB_PASS}`) is a
//! secret too.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::process::Command;

use vger_config::Config;

/// Variables vger itself reads secrets from.
pub const SECRET_VARIABLES: [&str; 4] =
    ["VGER_PASSPHRASE", "VGER_NEW_PASSPHRASE", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

/// Secret values shorter than this are not masked in text (masking every
/// `a` of a one-letter test passphrase would garble messages, not protect).
const MIN_MASKED_LEN: usize = 4;

/// What is kept from child processes and masked in shown commands.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// Variables removed from children's environment.
    hidden: Vec<OsString>,
    /// Values masked in text, longest first.
    values: Vec<String>,
}

impl Secrets {
    /// The secrets of `config` and of this process's environment.
    pub fn of(config: &Config) -> Self {
        Self::from_parts(config, std::env::vars_os())
    }

    fn from_parts(config: &Config, environment: impl Iterator<Item = (OsString, OsString)>) -> Self {
        let mut values: BTreeSet<String> = BTreeSet::new();
        for repo in &config.repositories {
            let enc = config.effective_encryption(repo);
            values.extend(enc.passphrase);
            values.extend(repo.secret_access_key.clone());
            values.extend(repo.access_token.clone());
        }
        let environment: Vec<(OsString, OsString)> = environment.collect();
        for (name, value) in &environment {
            if SECRET_VARIABLES.iter().any(|s| name == s) {
                values.extend(value.to_str().map(str::to_string));
            }
        }
        values.retain(|v| !v.is_empty());
        let passed = |name: &OsString| config.pass_secrets.iter().any(|p| name == p.as_str());
        let hidden = environment
            .iter()
            .filter(|(name, value)| {
                let named = SECRET_VARIABLES.iter().any(|s| name == s);
                let holds = value.to_str().is_some_and(|v| values.contains(v));
                (named || holds) && !passed(name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut values: Vec<String> = values.into_iter().filter(|v| v.len() >= MIN_MASKED_LEN).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Secrets { hidden, values }
    }

    /// Removes the secret variables from `command`'s environment.
    pub fn hide_from(&self, command: &mut Command) {
        for name in &self.hidden {
            command.env_remove(name);
        }
    }

    /// The variables a child must not inherit.
    pub fn hidden_variables(&self) -> &[OsString] {
        &self.hidden
    }

    /// `text` with every secret value replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(yaml: &str) -> Config {
        let env = vger_config::Environment::from_map(Default::default(), "/");
        Config::from_yaml_str_in(yaml, Path::new("/x/vger.yaml"), &env).unwrap()
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (OsString, OsString)> {
        pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn secret_variables_and_holders_of_config_secrets_are_hidden() {
        let c = config(
            "repositories:\n  - url: /r\n    encryption: { passphrase: from-db-pass }\n    access_token: tok-123456\n",
        );
        let env = vars(&[
            ("VGER_PASSPHRASE", "pp-secret"),
            ("DB_PASS", "from-db-pass"),
            ("HOME", "/home/me"),
            ("AWS_SESSION_TOKEN", "sess"),
        ]);
        let s = Secrets::from_parts(&c, env);
        let hidden: Vec<&str> = s.hidden.iter().map(|n| n.to_str().unwrap()).collect();
        assert_eq!(hidden, ["VGER_PASSPHRASE", "DB_PASS", "AWS_SESSION_TOKEN"]);
        assert_eq!(s.mask("curl -H tok-123456 -d pp-secret x"), "curl -H *** -d *** x");
    }

    #[test]
    fn the_config_can_pass_a_secret_on() {
        let c = config("repositories:\n  - url: /r\npass_secrets: [AWS_SECRET_ACCESS_KEY]\n");
        let s = Secrets::from_parts(&c, vars(&[("AWS_SECRET_ACCESS_KEY", "k"), ("VGER_PASSPHRASE", "p")]));
        let hidden: Vec<&str> = s.hidden.iter().map(|n| n.to_str().unwrap()).collect();
        assert_eq!(hidden, ["VGER_PASSPHRASE"]);
    }
}
