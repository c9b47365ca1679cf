//! Signals as flags the scheduler polls between steps:
//! SIGHUP reloads the config, SIGUSR1 runs every repository now,
//! SIGTERM/SIGINT stop after the current repository's cycle. A second
//! SIGTERM/SIGINT exits at once with 128 + the signal number (143/130).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::flag;

#[derive(Clone)]
pub struct SignalFlags {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    run_now: Arc<AtomicBool>,
}

impl SignalFlags {
    pub fn install() -> Result<SignalFlags> {
        let flags = SignalFlags {
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
            run_now: Arc::new(AtomicBool::new(false)),
        };
        for (signal, code) in [(SIGTERM, 128 + SIGTERM), (SIGINT, 128 + SIGINT)] {
            // Registered first, so it sees the flag as the previous signal left it.
            flag::register_conditional_shutdown(signal, code, Arc::clone(&flags.stop))
                .context("cannot install a signal handler")?;
            flag::register(signal, Arc::clone(&flags.stop)).context("cannot install a signal handler")?;
        }
        flag::register(SIGHUP, Arc::clone(&flags.reload)).context("cannot install a signal handler")?;
        flag::register(SIGUSR1, Arc::clone(&flags.run_now)).context("cannot install a signal handler")?;
        Ok(flags)
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Whether SIGHUP arrived since the last call.
    pub fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::SeqCst)
    }

    /// Whether SIGUSR1 arrived since the last call.
    pub fn take_run_now(&self) -> bool {
        self.run_now.swap(false, Ordering::SeqCst)
    }
}
