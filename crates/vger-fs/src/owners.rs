//! uid/gid to user/group names, cached: a tree usually has few owners, and
//! each lookup may read /etc/passwd or ask NSS.

use std::collections::HashMap;
use std::ffi::CStr;

/// Remembers the name of every uid and gid looked up (or that it has none).
#[derive(Debug, Default)]
pub struct OwnerNames {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl OwnerNames {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn user(&mut self, uid: u32) -> Option<String> {
        self.users.entry(uid).or_insert_with(|| lookup_user(uid)).clone()
    }

    pub fn group(&mut self, gid: u32) -> Option<String> {
        self.groups.entry(gid).or_insert_with(|| lookup_group(gid)).clone()
    }
}

/// Buffer sizes tried for the `_r` lookups, doubling on ERANGE.
const START_BUF: usize = 1024;
const MAX_BUF: usize = 1 << 20;

fn lookup_user(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; START_BUF];
    loop {
        // SAFETY: an all-zero passwd is a valid value (null pointers, zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: pwd, buf and result are valid for writes; buf.len() is its size.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < MAX_BUF {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside buf.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

fn lookup_group(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; START_BUF];
    loop {
        // SAFETY: an all-zero group is a valid value (null pointers, zero ids).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: grp, buf and result are valid for writes; buf.len() is its size.
        let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < MAX_BUF {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || grp.gr_name.is_null() {
            return None;
        }
        // SAFETY: on success gr_name points to a NUL-terminated string inside buf.
        let name = unsafe { CStr::from_ptr(grp.gr_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name() {
        let mut names = OwnerNames::new();
        assert_eq!(names.user(0).as_deref(), Some("root"));
        assert_eq!(names.group(0).as_deref(), Some("root"));
        assert_eq!(names.user(3_999_999_999), None);
        assert_eq!(names.user(0).as_deref(), Some("root"));
    }
}
