//! Sixteen clients writing and reading at once.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{Server, APPEND, FULL};
use vger_storage::testsuite::pattern;
use vger_storage::Storage;

#[test]
fn sixteen_clients_two_hundred_objects_each() {
    let server = Server::start();
    let key = |t: usize, i: usize| format!("packs/{t:02x}/client{t}-object{i:03}");
    let data = |t: usize, i: usize| pattern((t * 1000 + i) as u64, 1000 + (t * 7919 + i * 104_729) % 30_000);
    std::thread::scope(|scope| {
        for t in 0..16 {
            let server = &server;
            scope.spawn(move || {
                let client = server.client("shared", if t % 2 == 0 { FULL } else { APPEND });
                for i in 0..200 {
                    client.put_new(&key(t, i), &data(t, i)).unwrap();
                    assert_eq!(client.get(&key(t, i)).unwrap(), data(t, i), "client {t} object {i}");
                }
                let listed = client.list(&format!("packs/{t:02x}/")).unwrap();
                assert_eq!(listed.len(), 200);
            });
        }
    });
    let client = server.client("shared", FULL);
    assert_eq!(client.list("").unwrap().len(), 3200);
    for t in 0..16 {
        for i in (0..200).step_by(37) {
            assert_eq!(client.get(&key(t, i)).unwrap(), data(t, i));
        }
    }
    assert!(server.files().iter().all(|f| !f.contains(".tmp-")));
}
