//! Targets for what a network client or an operator hands vger-server:
//! request targets (routing and key validation) and the tokens file.

use vger_protocol::is_valid_repo_name;
use vger_server::layout::classify;
use vger_server::route::{parse_str, RepoAction, Target};
use vger_server::tokens::parse_tokens_file;
use vger_storage::keys::{validate_key, validate_prefix};

use super::refused;
use crate::Outcome;

/// A request target (`/repo/key?query`): whatever the router accepts
/// names a valid repository and a key of vger's layout or a valid prefix,
/// so nothing it lets through can leave the repository's folder.
pub(crate) fn server_route(data: &[u8]) -> Outcome {
    let text = std::str::from_utf8(data).map_err(refused)?;
    let target = parse_str(text).map_err(|e| format!("{e:?}"))?;
    if let Target::Repo { repo, action } = target {
        assert!(is_valid_repo_name(&repo), "routed to repository {repo:?}");
        match action {
            RepoAction::Object(key) => {
                assert!(validate_key(&key).is_ok(), "routed to key {key:?}");
                assert!(classify(&key).is_some(), "routed to {key:?}, outside vger's layout");
                assert!(!key.contains(".."), "routed to {key:?}");
            }
            RepoAction::List { prefix } => assert!(validate_prefix(&prefix).is_ok(), "listing {prefix:?}"),
            RepoAction::Stats | RepoAction::VerifyPacks | RepoAction::Repack => {}
        }
    }
    Ok(())
}

/// A tokens file (YAML), as the server loads it at start and on reload.
pub(crate) fn server_tokens(data: &[u8]) -> Outcome {
    let text = std::str::from_utf8(data).map_err(refused)?;
    let (tokens, _) = parse_tokens_file(text, "fuzz.yaml")?;
    for t in &tokens {
        assert!(!t.name.is_empty(), "a token without a name");
        assert!(t.repos.iter().all(|r| is_valid_repo_name(r)), "a token for {:?}", t.repos);
    }
    Ok(())
}
