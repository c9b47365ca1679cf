//! Helpers for snapshot paths: `/`-separated raw bytes.

use std::cmp::Ordering;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;

/// Orders paths the way the tree stream is sorted: component by component,
/// each component by its raw bytes. A directory sorts right before its
/// contents, so `a` < `a/b` < `a-b` (a plain byte comparison would put `a-b`
/// first, because `-` < `/`).
pub fn cmp_paths(a: &[u8], b: &[u8]) -> Ordering {
    let mut ca = a.split(|c| *c == b'/');
    let mut cb = b.split(|c| *c == b'/');
    loop {
        match (ca.next(), cb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match x.cmp(y) {
                Ordering::Equal => continue,
                other => return other,
            },
        }
    }
}

/// `parent/name`, or `name` when `parent` is empty.
pub use vger_format::tree::join_path as join_rel;

/// Splits `a/b/c` into (`a/b`, `c`); the parent is empty for a top-level name.
pub fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|c| *c == b'/') {
        Some(i) => (path.get(..i).unwrap_or_default(), path.get(i + 1..).unwrap_or_default()),
        None => (&[], path),
    }
}

/// Raw bytes as an `OsStr`.
pub fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// A path component or link target for a libc call.
pub(crate) fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_order() {
        assert_eq!(cmp_paths(b"a", b"a/b"), Ordering::Less);
        assert_eq!(cmp_paths(b"a/b", b"a-b"), Ordering::Less);
        assert_eq!(cmp_paths(b"a", b"a-b"), Ordering::Less);
        assert_eq!(cmp_paths(b"a/b/c", b"a/b"), Ordering::Greater);
        assert_eq!(cmp_paths(b"a/b", b"a/b"), Ordering::Equal);
        assert_eq!(cmp_paths(b"a/z", b"ab"), Ordering::Less);
        assert_eq!(cmp_paths(b"b", b"a/z"), Ordering::Greater);
        assert_eq!(cmp_paths(b"caf\xe9", b"cafe/x"), Ordering::Greater);
        let mut v: Vec<&[u8]> = vec![b"a-b", b"a/b", b"a", b"a/b/c", b"a.b", b"a/a", b"b"];
        v.sort_by(|x, y| cmp_paths(x, y));
        let want: Vec<&[u8]> = vec![b"a", b"a/a", b"a/b", b"a/b/c", b"a-b", b"a.b", b"b"];
        assert_eq!(v, want);
    }

    #[test]
    fn split_and_join() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(join_rel(b"", b"x"), b"x".to_vec());
        assert_eq!(join_rel(b"a/b", b"x"), b"a/b/x".to_vec());
    }
}
