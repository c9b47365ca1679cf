//! `check --repair`: salvages damaged packs, rebuilds the index from the
//! packs and removes snapshots whose data is gone (after a plan is
//! confirmed).
//!
//! Order of writes: salvage packs, then one merged segment naming every
//! readable pack except the damaged ones, then deletion of the old
//! segments and of the damaged packs. A crash at any point leaves every
//! intact chunk indexed or in a pack the next repair or compact adopts.

mod salvage;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use vger_format::id::{PackId, SnapshotId};
use vger_format::index::PackEntry;

use crate::check::{scan_structure, snapshot_problems, CheckOptions, CheckReport, RepoState};
use crate::chunk_table::TableBuilder;
use crate::compact::write_replacement_segments;
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
    /// Damaged packs whose intact chunks were copied into new packs and
    /// which were then deleted.
    pub packs_salvaged: usize,
    pub chunks_rescued: u64,
    pub chunks_lost: u64,
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
    let damaged = salvage::damaged_packs(repo, &state, opts.verify_data)?;
    let salvaged = salvage::salvage(repo, &lock, &mut state, &damaged, &mut out.packs_unreadable)?;
    out.packs_salvaged = salvaged.replaced.len();
    out.chunks_rescued = salvaged.chunks_rescued;
    out.chunks_lost = salvaged.chunks_lost;
    let index_broken = !check.errors.is_empty() || state.index.packs().len() != state.stored.len();
    if index_broken || !salvaged.replaced.is_empty() {
        rebuild_index(repo, &lock, &mut state, &salvaged, &mut out)?;
    }
    for id in &salvaged.replaced {
        lock.check_alive()?;
        repo.storage().delete(&id.storage_key())?;
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
                let problems = snapshot_problems(&state, &s);
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

/// Writes one segment naming every readable pack (minus damaged chunks and
/// the salvaged packs, plus the packs salvage wrote), superseding all
/// current segments, then deletes those.
fn rebuild_index(
    repo: &Repository,
    lock: &RepoLock,
    state: &mut RepoState,
    salvaged: &salvage::Salvage,
    out: &mut RepairReport,
) -> Result<()> {
    let created: HashMap<PackId, u64> = state.index.packs().iter().map(|p| (p.id, p.created)).collect();
    let mut packs = salvaged.new_packs.clone();
    let mut stored: Vec<(PackId, u64)> = state.stored.iter().map(|(k, v)| (*k, *v)).collect();
    stored.sort();
    let new: HashSet<PackId> = salvaged.new_packs.iter().map(|p| p.id).collect();
    for (id, size) in stored {
        if salvaged.replaced.contains(&id) || new.contains(&id) {
            continue;
        }
        match read_trailer(repo, &id, size) {
            Ok(mut blobs) => {
                if salvaged.unverified.contains(&id) {
                    blobs.retain(|b| !state.bad_chunks.contains(&b.id));
                }
                let created = created.get(&id).copied().filter(|c| *c > 0).unwrap_or_else(unix_now);
                packs.push(PackEntry { id, size, blobs, created });
            }
            Err(e) => out.packs_unreadable.push(format!("pack {}: {e}", id.short())),
        }
    }
    out.packs_indexed = packs.len();
    let mut builder = TableBuilder::default();
    for p in &packs {
        builder.add_pack(p);
    }
    let index = builder.finish();
    let old = std::mem::take(&mut state.all_segment_ids);
    state.all_segment_ids = write_replacement_segments(repo, lock, packs, old.clone())?;
    for id in &old {
        repo.storage().delete(&id.storage_key())?;
    }
    state.trees = crate::check::tree_store(repo, &index);
    crate::parallel::lock(&state.clean_dirs).clear();
    state.index = index;
    state.bad_packs.clear();
    state.damaged_packs.clear();
    // A damaged chunk with an intact copy elsewhere is indexed there; the
    // others are simply missing now.
    let index = &state.index;
    state.bad_chunks.retain(|id| !index.contains(id));
    out.index_rebuilt = true;
    Ok(())
}
