//! Removing what a restore with `--delete` finds in the target that the
//! snapshot does not have. Like everything else of a restore it goes
//! through open directory handles, one name at a time: a symlink is removed
//! as a link, never followed, so nothing outside the target is touched,
//! not even through a directory swapped for a symlink while it runs.

use std::io;

use super::dir_handle::DirHandle;
use crate::path::join_rel;

/// Removes `name` of `parent` (at `path` in the target) and, for a
/// directory, everything in it, deepest first; `removed` is told each path
/// once it is gone. With `dry_run` nothing is removed and `removed` is told
/// what would be, in the same order.
pub(crate) fn remove_tree(
    parent: &DirHandle,
    name: &[u8],
    path: &[u8],
    dry_run: bool,
    removed: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let st = parent.lstat(name)?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        // O_NOFOLLOW: if a symlink took the directory's place since the
        // lstat, this fails instead of entering the link's target.
        let dir = parent.open_child(name)?;
        for child in dir.names()? {
            remove_tree(&dir, &child, &join_rel(path, &child), dry_run, removed)?;
        }
        if !dry_run {
            parent.rmdir(name)?;
        }
    } else if !dry_run {
        parent.unlink(name)?;
    }
    removed(path);
    Ok(())
}
