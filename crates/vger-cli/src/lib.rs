//! vger-cli
