//! Whether a config file holds secrets that other users can read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::model::Config;

/// Permission bits that let users other than the owner read a file.
const READABLE_BY_OTHERS: u32 = 0o044;

/// A one-line warning when the file at `path` holds a `passphrase`,
/// `secret_access_key` or `access_token` written in it (not taken from
/// `${VAR}`) and its group or other users may read it; `None` otherwise.
pub fn exposed_secrets_warning(path: &Path, config: &Config) -> Option<String> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    if mode & READABLE_BY_OTHERS == 0 {
        return None;
    }
    // A value that came from the environment does not appear in the text.
    let text = std::fs::read_to_string(path).ok()?;
    let written = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty() && text.contains(v));
    let mut held: Vec<&str> = Vec::new();
    let mut note = |name: &'static str, is_held: bool| {
        if is_held && !held.contains(&name) {
            held.push(name);
        }
    };
    note("passphrase", written(&config.encryption.passphrase));
    for repo in &config.repositories {
        note("passphrase", written(&repo.encryption.as_ref().and_then(|e| e.passphrase.clone())));
        note("secret_access_key", written(&repo.secret_access_key));
        note("access_token", written(&repo.access_token));
    }
    if held.is_empty() {
        return None;
    }
    Some(format!(
        "{} holds a {} and other users can read it (mode {:o}); run `chmod 600 {}`",
        path.display(),
        held.join(", "),
        mode & 0o777,
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail by panicking.

    use std::collections::HashMap;

    use super::*;
    use crate::Environment;

    fn check(yaml: &str, mode: u32, vars: &[(&str, &str)]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vger.yaml");
        std::fs::write(&path, yaml).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>();
        let config = Config::from_yaml_str_in(yaml, &path, &Environment::from_map(vars, dir.path())).unwrap();
        exposed_secrets_warning(&path, &config)
    }

    #[test]
    fn written_secrets_in_a_readable_file_are_named() {
        let yaml = "repositories:\n  - url: /srv/r\n    access_token: tok-0123456789abcdef\nencryption:\n  passphrase: hunter2hunter2\n";
        let warning = check(yaml, 0o644, &[]).unwrap();
        assert!(warning.contains("passphrase, access_token") && warning.contains("chmod 600"), "{warning}");
        assert!(warning.contains("mode 644"), "{warning}");
        assert!(check(yaml, 0o640, &[]).is_some(), "group-readable");
        assert_eq!(check(yaml, 0o600, &[]), None);
    }

    #[test]
    fn secrets_from_the_environment_or_none_at_all_are_fine() {
        let from_env = "repositories:\n  - url: /srv/r\n    secret_access_key: ${KEY}\n";
        assert_eq!(check(from_env, 0o644, &[("KEY", "s3cr3t-from-env")]), None);
        assert_eq!(check("repositories:\n  - url: /srv/r\n", 0o644, &[]), None);
    }
}
