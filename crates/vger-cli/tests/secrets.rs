//! Hooks and command dumps against hostile values and leaking secrets:
//! placeholders are substituted once (an error or a path that holds
//! `{source_path}` and shell syntax stays inert), children do not inherit
//! the passphrase or other secrets unless `pass_secrets` says so, and no
//! secret shows in the output at any `-v` level.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;

use common::*;

/// A secret held in the config (an access token; unused by a local
/// repository, but vger must treat it as a secret all the same).
const TOKEN: &str = "tok-5ecret-7f3a9c";

fn repo_yaml(env: &TestEnv) -> String {
    format!("repositories:\n  - label: local\n    url: \"{}\"\n    access_token: {TOKEN}\n", env.repo().display())
}

#[test]
fn a_placeholder_inside_a_value_is_not_substituted_again() {
    let env = TestEnv::new();
    // A source path that does not exist and holds a placeholder and shell
    // syntax: the backup fails, and `{error}` quotes that path.
    let hostile = env.path("src{source_path}$(touch pwned-by-error)'x");
    let yaml = format!(
        "{}sources:\n  - label: data\n    path: \"{}\"\n    hooks:\n      failed: \"printf '%s' {{error}} > error.txt; printf '%s' {{source_path}} > path.txt\"\n",
        repo_yaml(&env),
        hostile.display()
    );
    env.write_config(&yaml);
    env.init();
    env.run(["backup"]).code(1);
    assert!(!env.path("pwned-by-error").exists(), "the shell ran text from the error");
    let error = fs::read_to_string(env.path("error.txt")).unwrap();
    assert!(error.contains(&format!("source path {} does not exist", hostile.display())), "{error}");
    assert_eq!(fs::read_to_string(env.path("path.txt")).unwrap(), hostile.display().to_string());
}

#[test]
fn a_source_path_with_placeholders_and_shell_syntax_reaches_the_hook_as_it_is() {
    let env = TestEnv::new();
    let src = env.path("dir {error}{label};touch pwned-by-path");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"a").unwrap();
    let yaml = format!(
        "{}sources:\n  - label: data\n    path: \"{}\"\n    hooks:\n      after: \"printf '%s' {{source_path}} > path.txt\"\n",
        repo_yaml(&env),
        src.display()
    );
    env.write_config(&yaml);
    env.init();
    env.run(["backup"]).ok();
    assert!(!env.path("pwned-by-path").exists());
    assert_eq!(fs::read_to_string(env.path("path.txt")).unwrap(), src.display().to_string());
}

/// The environment a hook and a command dump saw, and the output of a
/// `-vvv` backup, for a config with `extra` YAML at the top level.
fn children_environment(extra: &str) -> (String, String, String) {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"a").unwrap();
    let yaml = format!(
        "{}sources:\n  - label: data\n    path: \"{}\"\n    command_dumps:\n      - name: env.txt\n        command: env\nhooks:\n  before: \"env > hook-env.txt; echo {TOKEN} > /dev/null\"\n{extra}",
        repo_yaml(&env),
        src.display()
    );
    env.write_config(&yaml);
    env.init();
    let vars = [("VGER_PASSPHRASE", PASS), ("DB_PASSWORD", TOKEN), ("HARMLESS", "visible-value")];
    let run = env.run_env(["-vvv", "backup"], &vars).ok();
    let dest = env.path("out");
    env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).ok();
    let dump = fs::read_to_string(dest.join("vger-dumps/env.txt")).unwrap();
    (fs::read_to_string(env.path("hook-env.txt")).unwrap(), dump, format!("{}{}", run.stdout, run.stderr))
}

#[test]
fn hooks_and_dumps_do_not_inherit_secrets_and_logs_show_none() {
    let (hook, dump, output) = children_environment("");
    assert!(hook.contains("VGER_COMMAND=backup"), "{hook}");
    for seen in [&hook, &dump] {
        assert!(seen.contains("HARMLESS=visible-value"), "{seen}");
        assert!(!seen.contains("VGER_PASSPHRASE") && !seen.contains(PASS), "the passphrase leaked: {seen}");
        // A variable holding a secret of the config is a secret too.
        assert!(!seen.contains("DB_PASSWORD") && !seen.contains(TOKEN), "a config secret leaked: {seen}");
    }
    assert!(output.contains("running before hook"), "-vvv shows the hook: {output}");
    assert!(output.contains("echo *** > /dev/null"), "the hook's secret is masked: {output}");
    assert!(!output.contains(PASS) && !output.contains(TOKEN), "a secret shows at -vvv: {output}");
}

#[test]
fn pass_secrets_passes_the_named_ones_on() {
    let (hook, dump, _) = children_environment("pass_secrets: [VGER_PASSPHRASE]\n");
    for seen in [&hook, &dump] {
        assert!(seen.contains(&format!("VGER_PASSPHRASE={PASS}")), "{seen}");
        assert!(!seen.contains(TOKEN), "only the named secret is passed on: {seen}");
    }
}
