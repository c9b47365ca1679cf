//! The resume journal an interrupted backup leaves in the state folder.

use std::os::unix::fs::DirBuilderExt;

use vger_crypto::ObjectType;
use vger_engine::backup::resume::EarlierRuns;
use vger_engine::backup::ChangeDetection;
use vger_format::entry::{Entry, EntryKind};

use super::{refused, Input};
use crate::fixture::{fixture, journal_frame_identity};
use crate::Outcome;

/// The run id of journals this target assembles.
const RUN: [u8; 16] = [0x5a; 16];

/// Stored: a journal file. Plaintext: `([length u32][frame plaintext])*`,
/// each frame sealed here for its position. The journal is read as the
/// next backup of the fixture's source reads it, beside a walk of the
/// fixture's files; a file it resumes must add up and be indexed. `Ok`
/// when at least one file was resumed.
pub(crate) fn resume_journal(data: &[u8]) -> Outcome {
    let f = fixture();
    let bytes = match Input::read(data) {
        Input::Stored(bytes) => bytes.to_vec(),
        Input::Plaintext(mut rest) => {
            let mut out = b"VGERJRNL".to_vec();
            out.extend_from_slice(&RUN);
            let mut n = 0;
            while let Some((len, after)) = rest.split_at_checked(4) {
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                let (plaintext, after) = after.split_at(len.min(after.len()));
                let sealed = f.seal(ObjectType::Snapshot, &journal_frame_identity(&RUN, n), plaintext);
                out.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
                out.extend_from_slice(&sealed);
                (rest, n) = (after, n + 1);
            }
            out
        }
    };
    let written = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&f.journal_dir)
        .and_then(|()| std::fs::write(f.journal_dir.join(&f.journal_name), &bytes));
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&f.journal_dir);
        return Err(refused(e));
    }
    let mut runs = EarlierRuns::open(&f.journal_dir, &f.binding, f.repo.envelope());
    let mut resumed = 0;
    let files = f.entries.iter().filter(|e| e.kind == EntryKind::File);
    for entry in files.chain([&Entry::new(vec![0xff; 8], EntryKind::File)]) {
        let Some(found) = runs.lookup(entry, ChangeDetection::Strict, &f.index) else { continue };
        let sum: u64 = found.chunks.iter().map(|c| u64::from(c.len())).sum();
        assert_eq!(sum, entry.size, "a resumed file's chunks do not add up to its size");
        assert!(found.chunks.iter().all(|c| f.index.contains(c.id())), "a resumed chunk is not indexed");
        resumed += 1;
    }
    let _ = std::fs::remove_dir_all(&f.journal_dir);
    if resumed > 0 {
        Ok(())
    } else {
        Err("no file resumed".into())
    }
}
