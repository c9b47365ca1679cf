//! The shared backend suite, unchanged, over `RestStorage` against a real
//! `vger-server` process with a `full` token.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{Server, FULL};
use vger_storage::testsuite::Fixture;
use vger_storage::{RestStorage, Storage};

struct RestFixture {
    storage: RestStorage,
    _server: Server,
}

impl Fixture for RestFixture {
    fn storage(&self) -> &dyn Storage {
        &self.storage
    }
}

fn fresh() -> RestFixture {
    let server = Server::start();
    RestFixture { storage: server.client("suite", FULL), _server: server }
}

vger_storage::storage_test_suite!(fresh);
