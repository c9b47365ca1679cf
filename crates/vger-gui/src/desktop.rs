//! The desktop around the window: a notification when a backup fails, and
//! an icon in the panel's tray.
//!
//! Both speak D-Bus in pure Rust (zbus), so they need no system library:
//! the notification through `notify-rust` (org.freedesktop.Notifications),
//! the tray icon through `ksni` (the StatusNotifierItem protocol of KDE,
//! GNOME with the AppIndicator extension, XFCE, LXQt and most panels).
//! Either may find nothing to talk to (no session bus, no notification
//! service, no StatusNotifier host, as under a bare Xvfb): the app then
//! works as before and says so once on standard error.

use std::sync::mpsc::{self, Receiver, Sender};

use crate::model::Waker;

/// Shows "backup of LABEL failed" on the desktop, from a thread of its own
/// (a D-Bus call can take a while); a missing notification service is
/// logged, never shown as an error.
pub fn backup_failed(label: &str, message: &str) {
    let summary = format!("vger: the backup of {label} failed");
    let body = message.to_string();
    std::thread::spawn(move || {
        let shown = notify_rust::Notification::new()
            .appname("vger")
            .summary(&summary)
            .body(&body)
            .icon("dialog-error")
            .urgency(notify_rust::Urgency::Critical)
            .show();
        match shown {
            Ok(_) => eprintln!("vger-gui: notified: {summary}"),
            Err(e) => eprintln!("vger-gui: no desktop notification ({e}); {summary}: {body}"),
        }
    });
}

/// What the tray icon's menu asks of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAsk {
    /// Back up every repository now.
    BackUpAll,
    /// Bring the window forward.
    Show,
    Quit,
}

struct Icon {
    sender: Sender<TrayAsk>,
    waker: Waker,
}

impl Icon {
    fn ask(&self, what: TrayAsk) {
        let _ = self.sender.send(what);
        (self.waker)();
    }
}

impl ksni::Tray for Icon {
    fn id(&self) -> String {
        "vger".into()
    }

    fn title(&self) -> String {
        "vger backups".into()
    }

    fn icon_name(&self) -> String {
        "drive-harddisk".into()
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        self.ask(TrayAsk::Show);
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        use ksni::menu::StandardItem;
        let item = |label: &str, what: TrayAsk| {
            StandardItem {
                label: label.into(),
                activate: Box::new(move |t: &mut Self| t.ask(what)),
                ..Default::default()
            }
            .into()
        };
        vec![item("Back up now", TrayAsk::BackUpAll), item("Show vger", TrayAsk::Show), item("Quit", TrayAsk::Quit)]
    }

    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        eprintln!("vger-gui: the panel's tray went away ({reason:?}); the window works without it");
        // Keep the service: a panel started later shows the icon.
        true
    }
}

/// The tray icon's menu, as the window reads it.
pub struct Tray {
    receiver: Receiver<TrayAsk>,
}

impl Tray {
    /// Puts the icon in the tray, from a thread of its own (the window
    /// never waits on D-Bus), if the desktop has a tray (a StatusNotifier
    /// host on the session bus); without one, a line on standard error.
    pub fn start(waker: Waker) -> Tray {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            use ksni::blocking::TrayMethods;
            match (Icon { sender, waker }).spawn() {
                Ok(handle) => {
                    eprintln!("vger-gui: tray icon shown");
                    // The service runs while the app does; this thread keeps its handle.
                    loop {
                        std::thread::park();
                        let _ = &handle;
                    }
                }
                Err(e) => eprintln!("vger-gui: no tray icon ({e}); the window works without it"),
            }
        });
        Tray { receiver }
    }

    /// What the menu asked since the last frame; never blocks.
    pub fn poll(&self) -> Vec<TrayAsk> {
        self.receiver.try_iter().collect()
    }
}
