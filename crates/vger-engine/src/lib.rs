//! vger-engine
