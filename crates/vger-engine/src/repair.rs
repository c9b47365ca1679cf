//! `check --repair`: rebuilds the index from the packs and removes
//! snapshots whose data is gone (after a plan is confirmed).

use std::collections::HashMap;

use serde::Serialize;
use vger_format::id::{PackId, SnapshotId};
use vger_format::index::PackEntry;

use crate::check::{scan_structure, snapshot_problems, CheckOptions, CheckReport, RepoState};
use crate::index::{write_merged_segment, ChunkIndex};
use crate::lock::{unix_now, RepoLock};
use crate::packs::read_trailer;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshots;
use crate::Result;

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    pub check: CheckReport,
    pub index_rebuilt: bool,
    pub packs_indexed: usize,
    pub packs_unreadable: Vec<String>,
    /// Snapshots whose data is gone, with their first damaged paths.
    pub damaged: Vec<DamagedSnapshot>,
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DamagedSnapshot {
    pub id: String,
    pub source_label: String,
    pub time: String,
    pub problems: Vec<String>,
}

/// Repairs what can be repaired. `confirm` sees the damaged snapshots and
/// returns whether to remove them.
pub fn repair(
    repo: &Repository,
    opts: &CheckOptions,
    progress: &Progress,
    confirm: &dyn Fn(&[DamagedSnapshot]) -> bool,
) -> Result<RepairReport> {
    let lock = RepoLock::exclusive(repo, "check --repair")?;
    let mut out = RepairReport::default();
    let mut check = CheckReport::default();
    let mut state = scan_structure(repo, &mut check)?;
    if opts.verify_data {
        crate::check::verify_packs_for_repair(repo, &mut state, &mut check, progress)?;
    }
    let index_broken = !check.errors.is_empty() || state.index.packs().len() != state.stored.len();
    if index_broken {
        rebuild_index(repo, &lock, &mut state, &mut out)?;
    }
    for id in snapshots::list_ids(repo)? {
        let damaged = match snapshots::load(repo, id) {
            Err(e) => DamagedSnapshot {
                id: id.to_hex(),
                source_label: String::new(),
                time: String::new(),
                problems: vec![format!("unreadable: {e}")],
            },
            Ok(s) => {
                let problems = snapshot_problems(repo, &state, &s);
                if problems.is_empty() {
                    continue;
                }
                DamagedSnapshot {
                    id: id.to_hex(),
                    source_label: s.snapshot.source_label,
                    time: s.snapshot.time,
                    problems,
                }
            }
        };
        out.damaged.push(damaged);
    }
    if !out.damaged.is_empty() && confirm(&out.damaged) {
        for d in &out.damaged {
            lock.check_alive()?;
            repo.storage().delete(&SnapshotId::from_hex(&d.id)?.storage_key())?;
            out.removed.push(d.id.clone());
        }
    }
    out.check = check;
    Ok(out)
}

/// Writes one segment naming every readable pack (minus damaged chunks),
/// superseding all current segments, then deletes those.
fn rebuild_index(repo: &Repository, lock: &RepoLock, state: &mut RepoState, out: &mut RepairReport) -> Result<()> {
    let created: HashMap<PackId, u64> = state.index.packs().iter().map(|p| (p.id, p.created)).collect();
    let mut packs = Vec::new();
    let mut stored: Vec<(PackId, u64)> = state.stored.iter().map(|(k, v)| (*k, *v)).collect();
    stored.sort();
    for (id, size) in stored {
        match read_trailer(repo, &id, size) {
            Ok(mut blobs) => {
                blobs.retain(|b| !state.bad_chunks.contains(&b.id));
                let created = created.get(&id).copied().filter(|c| *c > 0).unwrap_or_else(unix_now);
                packs.push(PackEntry { id, size, blobs, created });
            }
            Err(e) => out.packs_unreadable.push(format!("pack {}: {e}", id.short())),
        }
    }
    out.packs_indexed = packs.len();
    lock.check_alive()?;
    let new_id = write_merged_segment(repo.storage(), repo.envelope(), packs.clone(), state.all_segment_ids.clone())?;
    for id in &state.all_segment_ids {
        repo.storage().delete(&id.storage_key())?;
    }
    let segment = vger_format::index::IndexSegment {
        version: vger_format::index::INDEX_SEGMENT_VERSION,
        packs,
        supersedes: Vec::new(),
    };
    state.segments = vec![(new_id, segment)];
    state.all_segment_ids = vec![new_id];
    state.index = ChunkIndex::from_segments(&state.segments);
    state.bad_packs.clear();
    out.index_rebuilt = true;
    Ok(())
}
