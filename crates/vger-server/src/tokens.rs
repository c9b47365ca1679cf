//! Bearer tokens: where they come from (`VGER_SERVER_TOKEN`, a YAML tokens
//! file), what each may do, and the constant-time lookup.
//!
//! Only SHA-256 hashes of tokens are kept in memory; a presented token is
//! hashed and compared with every stored hash with `subtle`, so the time
//! taken does not depend on how many bytes of a guess were right.
//!
//! A token's name is its identity in logs, in the writer record of every
//! object it writes and in lock ownership, so names are unique and made
//! of safe characters ([`vger_protocol::is_valid_token_name`]).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vger_protocol::{is_valid_repo_name, is_valid_token_name, Permission, MAX_TOKEN_NAME_LEN};

/// Shorter tokens are refused when loading: they could be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// Environment variable holding a single `full` token.
pub const TOKEN_ENV: &str = "VGER_SERVER_TOKEN";

/// One accepted token.
#[derive(Debug, Clone)]
pub struct Token {
    sha256: [u8; 32],
    /// For logs and metrics: the configured name, or `sha256:<8 hex digits>`.
    pub name: String,
    pub permission: Permission,
    /// Repositories it may use; empty means all.
    pub repos: Vec<String>,
    /// Cap on the size of each repository it writes to, in bytes.
    pub quota: Option<u64>,
}

/// All tokens in force.
#[derive(Debug, Clone, Default)]
pub struct TokenSet {
    tokens: Vec<Token>,
    /// Things the operator should fix, for the log.
    pub warnings: Vec<String>,
}

impl TokenSet {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token whose hash matches `presented`. Every stored hash is
    /// compared, whatever matched before.
    pub fn find(&self, presented: &str) -> Option<&Token> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for token in &self.tokens {
            if bool::from(token.sha256.ct_eq(&hash)) {
                found = Some(token);
            }
        }
        found
    }

    /// Tokens from the environment value (one `full` token) and the
    /// tokens file, if given. Errors are one-line messages for the operator.
    pub fn load(env_token: Option<&str>, file: Option<&Path>) -> Result<TokenSet, String> {
        let mut tokens = Vec::new();
        let mut warnings = Vec::new();
        if let Some(secret) = env_token {
            check_secret(secret).map_err(|e| format!("{TOKEN_ENV}: {e}"))?;
            tokens.push(Token {
                sha256: Sha256::digest(secret.as_bytes()).into(),
                name: "env".into(),
                permission: Permission::Full,
                repos: Vec::new(),
                quota: None,
            });
        }
        if let Some(path) = file {
            tokens.extend(load_file(path, &mut warnings)?);
        }
        if tokens.is_empty() {
            return Err(format!(
                "no access tokens: set {TOKEN_ENV} (one token with full access) or pass --tokens FILE \
                 (see docs/server.md); tokens are never accepted on the command line"
            ));
        }
        for (i, token) in tokens.iter().enumerate() {
            if tokens.iter().skip(i + 1).any(|other| other.sha256 == token.sha256) {
                return Err(format!("token `{}` is listed twice", token.name));
            }
            if tokens.iter().skip(i + 1).any(|other| other.name == token.name) {
                return Err(format!(
                    "two tokens are named `{}`; names must be unique (they say who wrote each object and \
                     own locks; `env` is the name of {TOKEN_ENV})",
                    token.name
                ));
            }
        }
        Ok(TokenSet { tokens, warnings })
    }
}

/// One entry of the tokens file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: Option<String>,
    token: Option<String>,
    token_sha256: Option<String>,
    permissions: Permission,
    #[serde(default)]
    repos: Vec<String>,
    quota: Option<SizeValue>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// Largest tokens file read (a file of thousands of tokens is far smaller).
const MAX_TOKENS_FILE: u64 = 4 << 20;

fn load_file(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<Token>, String> {
    let shown = path.display().to_string();
    let size = fs::metadata(path).map_err(|e| format!("cannot read tokens file {shown}: {e}"))?.len();
    if size > MAX_TOKENS_FILE {
        return Err(format!(
            "tokens file {shown} is {size} bytes, more than the {MAX_TOKENS_FILE} a tokens file may be"
        ));
    }
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read tokens file {shown}: {e}"))?;
    let (tokens, plain) = parse_tokens_file(&text, &shown)?;
    let world_readable = fs::metadata(path).map(|m| m.permissions().mode() & 0o004 != 0).unwrap_or(false);
    if world_readable && plain {
        warnings.push(format!("tokens file {shown} holds plain tokens and is readable by everyone; chmod 600 it"));
    }
    Ok(tokens)
}

/// The tokens of a tokens file's text (`shown` names it in errors), and
/// whether any is given in plain text. Errors are one line each.
pub fn parse_tokens_file(text: &str, shown: &str) -> Result<(Vec<Token>, bool), String> {
    let options = serde_saphyr::options! { strict_booleans: true };
    let entries: Vec<TokenEntry> = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        // The first line has the position and the reason; the rest is a picture of the source.
        let text = e.to_string();
        format!("tokens file {shown}: {}", text.lines().next().unwrap_or_default().trim_start_matches("error: "))
    })?;
    let plain = entries.iter().any(|e| e.token.is_some());
    let tokens = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| token_from_entry(entry).map_err(|e| format!("tokens file {shown}, entry {}: {e}", i + 1)))
        .collect::<Result<_, _>>()?;
    Ok((tokens, plain))
}

fn token_from_entry(entry: TokenEntry) -> Result<Token, String> {
    let sha256: [u8; 32] = match (&entry.token, &entry.token_sha256) {
        (Some(secret), None) => {
            check_secret(secret)?;
            Sha256::digest(secret.as_bytes()).into()
        }
        (None, Some(hex_hash)) => {
            let bytes = hex::decode(hex_hash.trim())
                .map_err(|_| "token_sha256 is not hexadecimal; write the 64 hex digits of `sha256sum`")?;
            bytes.try_into().map_err(|_| "token_sha256 must be 64 hex digits (a SHA-256)")?
        }
        (Some(_), Some(_)) => return Err("give either `token` or `token_sha256`, not both".into()),
        (None, None) => return Err("missing `token` or `token_sha256`".into()),
    };
    for repo in &entry.repos {
        if !is_valid_repo_name(repo) {
            return Err(format!("`{repo}` is not a repository name ([A-Za-z0-9._-], not starting with `.`)"));
        }
    }
    let quota = match entry.quota {
        None => None,
        Some(SizeValue::Bytes(n)) => Some(n),
        Some(SizeValue::Text(text)) => Some(vger_config::parse_size(&text)?),
    };
    let name = entry.name.unwrap_or_else(|| format!("sha256:{}", hex::encode(sha256.get(..4).unwrap_or_default())));
    if !is_valid_token_name(&name) {
        return Err(format!(
            "the name {name:?} may hold only letters, digits and `._@:-`, at most {MAX_TOKEN_NAME_LEN} characters"
        ));
    }
    Ok(Token { sha256, name, permission: entry.permissions, repos: entry.repos, quota })
}

fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_TOKEN_LEN {
        return Err(format!("a token must be at least {MIN_TOKEN_LEN} characters (use e.g. `openssl rand -hex 32`)"));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token may only contain printable ASCII without spaces".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn loads_plain_and_hashed_tokens() {
        let hash = hex::encode(Sha256::digest(b"0123456789abcdef-hashed"));
        let file = write(&format!(
            "- name: laptop\n  token: 0123456789abcdef-plain\n  permissions: append\n  repos: [laptop]\n  quota: 1GiB\n\
             - token_sha256: {hash}\n  permissions: read\n"
        ));
        let set = TokenSet::load(None, Some(file.path())).unwrap();
        let laptop = set.find("0123456789abcdef-plain").unwrap();
        assert_eq!((laptop.name.as_str(), laptop.permission), ("laptop", Permission::Append));
        assert_eq!(laptop.quota, Some(1 << 30));
        assert_eq!(laptop.repos, ["laptop"]);
        let reader = set.find("0123456789abcdef-hashed").unwrap();
        assert_eq!(reader.permission, Permission::Read);
        assert!(reader.name.starts_with("sha256:"));
        assert!(set.find("0123456789abcdef-wrong").is_none());
    }

    #[test]
    fn refuses_bad_files() {
        for (text, want) in [
            ("- token: short\n  permissions: full\n", "at least 16"),
            ("- token: 0123456789abcdefgh\n  permissions: root\n", "unknown variant `root`"),
            ("- permissions: full\n", "missing"),
            ("- token: 0123456789abcdefgh\n  permissions: full\n  repo: [x]\n", "repo"),
            ("- token_sha256: abc\n  permissions: full\n", "64 hex"),
            ("- token: 0123456789abcdefgh\n  permissions: full\n  repos: [../x]\n", "repository name"),
            ("- name: a b\n  token: 0123456789abcdefgh\n  permissions: full\n", "may hold only"),
            (
                "- name: x\n  token: 0123456789abcdefgh\n  permissions: full\n\
                 - name: x\n  token: 0123456789abcdefgX\n  permissions: read\n",
                "named `x`",
            ),
        ] {
            let file = write(text);
            let err = TokenSet::load(None, Some(file.path())).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        let err = TokenSet::load(None, None).unwrap_err();
        assert!(err.contains(TOKEN_ENV) && err.contains("--tokens"), "{err}");
        assert!(TokenSet::load(Some("short"), None).is_err());
        assert_eq!(TokenSet::load(Some("0123456789abcdef"), None).unwrap().len(), 1);
    }
}
