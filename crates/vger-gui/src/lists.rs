//! Settings for the repositories and sources of `vger.yaml`: add or remove
//! one, and change a source's folders and excludes. Each change is a
//! targeted edit of the file's text ([`crate::yaml_edit`]: comments and
//! order stay), checked by the CLI's own loader before anything is
//! written (its message is shown otherwise), and written on a worker.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use vger_config::Config;

use crate::yaml_edit::{self, Value};

/// One change to the lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    AddRepository {
        label: String,
        url: String,
    },
    RemoveRepository(usize),
    AddSource {
        label: String,
        paths: Vec<String>,
        excludes: Vec<String>,
    },
    RemoveSource(usize),
    /// A source's folders and exclude patterns (an empty list removes the key).
    EditSource {
        index: usize,
        paths: Vec<String>,
        excludes: Vec<String>,
    },
}

/// Lines of a multi-line field, trimmed, without blanks.
pub fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

fn quoted(values: &[String]) -> Vec<String> {
    values.iter().map(|v| yaml_edit::scalar(v)).collect()
}

/// `text` with `change` made, and the config the CLI's loader reads from
/// it; or why not (in the loader's words when it refuses).
pub fn apply(text: &str, path: &Path, change: &Change) -> Result<(String, Config), String> {
    let edited = match change {
        Change::AddRepository { label, url } => {
            if url.trim().is_empty() {
                return Err("Type the new repository's URL or folder.".into());
            }
            let mut fields = vec![("url", Value::Scalar(yaml_edit::scalar(url.trim())))];
            if !label.trim().is_empty() {
                fields.insert(0, ("label", Value::Scalar(yaml_edit::scalar(label.trim()))));
            }
            yaml_edit::append_item(text, "repositories", &fields)
        }
        Change::RemoveRepository(i) => yaml_edit::remove_item(text, "repositories", *i),
        Change::AddSource { label, paths, excludes } => {
            if paths.is_empty() {
                return Err("Type at least one folder for the new source.".into());
            }
            let mut fields = Vec::new();
            if !label.trim().is_empty() {
                fields.push(("label", Value::Scalar(yaml_edit::scalar(label.trim()))));
            }
            fields.push(match paths.as_slice() {
                [one] => ("path", Value::Scalar(yaml_edit::scalar(one))),
                many => ("paths", Value::List(quoted(many))),
            });
            if !excludes.is_empty() {
                fields.push(("exclude", Value::List(quoted(excludes))));
            }
            yaml_edit::append_item(text, "sources", &fields)
        }
        Change::RemoveSource(i) => yaml_edit::remove_item(text, "sources", *i),
        Change::EditSource { index, paths, excludes } => {
            if paths.is_empty() {
                return Err("A source needs at least one folder (remove the source instead).".into());
            }
            let (one, many) = match paths.as_slice() {
                [one] => (Some(Value::Scalar(yaml_edit::scalar(one))), None),
                many => (None, Some(Value::List(quoted(many)))),
            };
            let excludes = (!excludes.is_empty()).then(|| Value::List(quoted(excludes)));
            yaml_edit::set_in_item(text, "sources", *index, "path", one.as_ref())
                .and_then(|t| yaml_edit::set_in_item(&t, "sources", *index, "paths", many.as_ref()))
                .and_then(|t| yaml_edit::set_in_item(&t, "sources", *index, "exclude", excludes.as_ref()))
        }
    }
    .map_err(|e| e.to_string())?;
    let config = Config::from_yaml_str(&edited, path).map_err(|e| e.to_string())?;
    Ok((edited, config))
}

/// A source as the form shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    pub label: String,
    /// One folder per line.
    pub paths: String,
    /// One pattern per line.
    pub excludes: String,
    loaded: (String, String),
}

/// The repositories and sources part of Settings.
pub struct Lists {
    pub path: PathBuf,
    /// Label and URL of each repository.
    pub repositories: Vec<(String, String)>,
    pub sources: Vec<SourceRow>,
    pub new_repository: (String, String),
    pub new_source: (String, String, String),
    /// The last change's result.
    pub message: Option<Result<String, String>>,
    stamp: crate::settings::Stamp,
    saving: Option<Receiver<Result<(String, crate::settings::Stamp), String>>>,
    /// The file's stamp after the last change written here, so that the
    /// window does not call it a change by another program.
    pub wrote: Option<crate::settings::Stamp>,
}

impl Lists {
    pub fn new(config: &Config, path: &Path, stamp: crate::settings::Stamp) -> Self {
        let sources = config
            .sources
            .iter()
            .map(|s| {
                let paths = s.all_paths().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n");
                let excludes = s.exclude.join("\n");
                SourceRow { label: s.label(), loaded: (paths.clone(), excludes.clone()), paths, excludes }
            })
            .collect();
        Lists {
            path: path.to_path_buf(),
            repositories: config.repositories.iter().map(|r| (r.label().to_string(), r.url.clone())).collect(),
            sources,
            new_repository: Default::default(),
            new_source: Default::default(),
            message: None,
            stamp,
            saving: None,
            wrote: None,
        }
    }

    /// Whether source `i`'s fields differ from the file.
    pub fn source_dirty(&self, i: usize) -> bool {
        self.sources
            .get(i)
            .is_some_and(|s| (s.paths.trim(), s.excludes.trim()) != (s.loaded.0.trim(), s.loaded.1.trim()))
    }

    pub fn saving(&self) -> bool {
        self.saving.is_some()
    }

    /// Makes `change` in the file on a worker; the window's watcher reads
    /// the file again afterwards, and the screens follow.
    pub fn start(&mut self, change: Change, waker: crate::model::Waker) {
        if self.saving.is_some() {
            return;
        }
        let (path, stamp) = (self.path.clone(), self.stamp);
        let (sender, receiver) = std::sync::mpsc::channel();
        self.saving = Some(receiver);
        std::thread::spawn(move || {
            let _ = sender.send(write(&path, stamp, &change));
            waker();
        });
    }

    /// Takes a finished change; never blocks.
    pub fn poll(&mut self) {
        if let Some(done) = self.saving.as_ref().and_then(|r| r.try_recv().ok()) {
            self.saving = None;
            self.message = Some(done.map(|(said, stamp)| {
                self.wrote = Some(stamp);
                said
            }));
        }
    }
}

/// Reads the file, makes the change, checks and writes it; refuses when
/// the file changed since the form was filled (`stamp`).
fn write(
    path: &Path,
    stamp: crate::settings::Stamp,
    change: &Change,
) -> Result<(String, crate::settings::Stamp), String> {
    if crate::settings::stamp(path) != stamp {
        return Err(format!(
            "{} was just changed by another program, so nothing was saved; it is read again in a moment.",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (edited, _) = apply(&text, path, change)?;
    crate::files::write_atomic(path, edited.as_bytes(), None, true)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((format!("Saved to {}.", path.display()), crate::settings::stamp(path)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TEXT: &str = "# my backups\nrepositories:\n  - label: nas   # at home\n    url: /srv/vger\n\nencryption:\n  mode: none\n\nsources:\n  - /home/me/Documents   # papers\n\n# the end\n";

    #[test]
    fn repositories_and_sources_are_added_edited_and_removed_with_comments_kept() {
        let path = Path::new("/x/vger.yaml");
        let add = Change::AddRepository { label: "usb".into(), url: "/media/usb/vger".into() };
        let (text, config) = apply(TEXT, path, &add).unwrap();
        assert_eq!(
            text,
            TEXT.replace("url: /srv/vger\n", "url: /srv/vger\n  - label: usb\n    url: /media/usb/vger\n")
        );
        assert_eq!(config.repositories.len(), 2);
        let (text, config) = apply(&text, path, &Change::RemoveRepository(0)).unwrap();
        assert_eq!(config.repositories[0].label(), "usb");
        assert!(text.starts_with("# my backups\nrepositories:\n  - label: usb\n"), "{text}");

        let add = Change::AddSource {
            label: "photos".into(),
            paths: vec!["/home/me/Photos".into(), "/data/more photos".into()],
            excludes: vec!["*.tmp".into()],
        };
        let (text, config) = apply(TEXT, path, &add).unwrap();
        assert_eq!(config.sources[1].label(), "photos");
        assert_eq!(config.sources[1].all_paths().len(), 2);
        assert_eq!(config.sources[1].exclude, ["*.tmp"]);
        assert!(text.ends_with("\n\n# the end\n") && text.contains("# papers"), "{text}");

        let edit = Change::EditSource { index: 0, paths: vec!["/home/me/Docs".into()], excludes: vec!["*.iso".into()] };
        let (text, config) = apply(TEXT, path, &edit).unwrap();
        assert_eq!(config.sources[0].all_paths(), [PathBuf::from("/home/me/Docs")]);
        assert_eq!(config.sources[0].exclude, ["*.iso"]);
        assert!(text.contains("  - path: /home/me/Docs   # papers\n    exclude:\n"), "{text}");
        let (_, config) = apply(&text, path, &Change::RemoveSource(0)).unwrap();
        assert!(config.sources.is_empty());
    }

    #[test]
    fn the_cli_loader_refuses_what_it_refuses_and_nothing_is_made_of_it() {
        let path = Path::new("/x/vger.yaml");
        // Two repositories of one label: the CLI's own rule and message.
        let add = Change::AddRepository { label: "nas".into(), url: "/elsewhere".into() };
        let refused = apply(TEXT, path, &add).unwrap_err();
        assert!(refused.contains("nas"), "{refused}");
        let edit = Change::EditSource { index: 0, paths: vec![], excludes: vec![] };
        assert!(apply(TEXT, path, &edit).unwrap_err().contains("at least one folder"));
        assert!(apply(TEXT, path, &Change::RemoveSource(3)).is_err());
    }

    #[test]
    fn a_change_is_written_on_a_worker_unless_the_file_changed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vger.yaml");
        std::fs::write(&path, TEXT).unwrap();
        let config = Config::from_yaml_str(TEXT, &path).unwrap();
        let mut lists = Lists::new(&config, &path, crate::settings::stamp(&path));
        assert_eq!(lists.sources[0].paths, "/home/me/Documents");
        lists.sources[0].excludes = "*.iso\n\n".into();
        assert!(lists.source_dirty(0));
        let change = Change::EditSource {
            index: 0,
            paths: lines_of(&lists.sources[0].paths),
            excludes: lines_of(&lists.sources[0].excludes),
        };
        lists.start(change.clone(), std::sync::Arc::new(|| {}));
        while lists.saving() {
            lists.poll();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(matches!(&lists.message, Some(Ok(_))), "{:?}", lists.message);
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(Config::from_yaml_str(&written, &path).unwrap().sources[0].exclude, ["*.iso"]);
        // The same form again: the file is no longer what it was filled from.
        lists.start(change, std::sync::Arc::new(|| {}));
        while lists.saving() {
            lists.poll();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            matches!(&lists.message, Some(Err(e)) if e.contains("changed by another program")),
            "{:?}",
            lists.message
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
    }
}
