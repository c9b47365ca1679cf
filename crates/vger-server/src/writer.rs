//! Which token wrote each object. The token's name is stored in the
//! extended attribute `user.vger.writer` of the object's file, set on the
//! temporary file before it takes its name: the record lives and dies
//! with the object's inode, appears in the same instant as the object, and
//! no request can set or change it.
//!
//! Listings report it (so `vger prune` can name who wrote a suspicious
//! snapshot), and a lock may be replaced or removed by an `append` token
//! only if that token wrote it.

use std::fs::File;
use std::io;
use std::path::Path;

use vger_protocol::is_valid_token_name;
use xattr::FileExt;

/// The extended attribute holding the writer's token name.
pub const WRITER_XATTR: &str = "user.vger.writer";

/// Records `name` as the writer of the (temporary) file.
pub fn record(file: &File, name: &str) -> io::Result<()> {
    file.set_xattr(WRITER_XATTR, name.as_bytes())
}

/// The recorded writer of the object at `path`; `None` if there is no
/// record (written before writers were recorded, or not by this server).
pub fn read(path: &Path) -> Option<String> {
    let value = xattr::get(path, WRITER_XATTR).ok()??;
    String::from_utf8(value).ok().filter(|name| is_valid_token_name(name))
}

/// Checks at start that the data directory's file system keeps extended
/// attributes; without them no lock could be bound to its writer.
pub fn probe(data_dir: &Path) -> Result<(), String> {
    let (temp, file) = vger_storage::local::durable::TempFile::create(data_dir)
        .map_err(|e| format!("cannot write in --data-dir {}: {e}", data_dir.display()))?;
    let recorded = record(&file, "probe").and_then(|()| match xattr::get(temp.path(), WRITER_XATTR)? {
        Some(value) if value == b"probe" => Ok(()),
        _ => Err(io::Error::other("the attribute did not read back")),
    });
    recorded.map_err(|e| {
        format!(
            "the file system of --data-dir {} does not keep extended attributes ({e}); vger-server records \
             which token wrote each object in `{WRITER_XATTR}`: use ext4, XFS, Btrfs or ZFS (or tmpfs on Linux 6.6+)",
            data_dir.display()
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_survives_a_link() {
        let dir = tempfile::tempdir().unwrap();
        probe(dir.path()).unwrap();
        let path = dir.path().join("object");
        let file = File::create(&path).unwrap();
        assert_eq!(read(&path), None);
        record(&file, "laptop").unwrap();
        std::fs::hard_link(&path, dir.path().join("linked")).unwrap();
        assert_eq!(read(&dir.path().join("linked")).as_deref(), Some("laptop"));
        record(&file, "bad name\u{1b}[31m").unwrap();
        assert_eq!(read(&path), None, "a record that is no token name is ignored");
    }
}
