//! WebDAV, read-only class 1 (RFC 4918) with the fake locking Finder and
//! Explorer want before they mount: OPTIONS, PROPFIND at depth 0 and 1
//! (infinity refused with 403, as the RFC allows), LOCK answered with a
//! lock nobody holds, UNLOCK. Symbolic links and special files have no
//! WebDAV form and are left out of listings (the web UI shows them).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use quick_xml::escape::{escape, partial_escape};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::body::streamed;
use crate::content::Validators;
use crate::layout::{self, encode_label, encode_segment, Place, LATEST};
use crate::server::{text, Shared};
use crate::store::{Node, NodeKind};
use crate::MountError;

/// Largest PROPFIND or LOCK body read.
const BODY_LIMIT: usize = 64 << 10;
/// Directory entries fetched per store call while a listing streams.
const PAGE: usize = 1000;
const DAV_NS: &str = "DAV:";
/// The properties served, in the DAV: namespace.
const LIVE_PROPS: [&str; 9] = [
    "displayname",
    "getcontentlength",
    "getlastmodified",
    "creationdate",
    "getetag",
    "getcontenttype",
    "resourcetype",
    "supportedlock",
    "lockdiscovery",
];

pub fn options() -> Response {
    let mut r = StatusCode::OK.into_response();
    let h = r.headers_mut();
    h.insert("DAV", header::HeaderValue::from_static("1, 2"));
    h.insert("MS-Author-Via", header::HeaderValue::from_static("DAV"));
    h.insert(header::ALLOW, header::HeaderValue::from_static("OPTIONS, GET, HEAD, PROPFIND, LOCK, UNLOCK"));
    h.insert(header::CONTENT_LENGTH, header::HeaderValue::from_static("0"));
    r
}

/// Which properties a PROPFIND asks for.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    All,
    Names,
    /// `(namespace, local name)` of each property asked for.
    Some(Vec<(String, String)>),
}

fn parse_propfind(body: &[u8]) -> Result<Wanted, MountError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Wanted::All);
    }
    let text = std::str::from_utf8(body).map_err(|_| MountError::BadRequest("PROPFIND body is not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    let bad = |e: &dyn std::fmt::Display| MountError::BadRequest(format!("PROPFIND body is not valid XML: {e}"));
    let mut depth = 0usize;
    let mut prop_depth = None;
    let mut wanted = None;
    let mut props = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| bad(&e))?;
        let ns = match ns {
            ResolveResult::Bound(n) => n.into_inner().to_string(),
            _ => String::new(),
        };
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if prop_depth == Some(depth + 1) && wanted.is_none() {
                    wanted = Some(Wanted::Some(std::mem::take(&mut props)));
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let local = e.local_name().into_inner().to_string();
        if prop_depth == Some(depth) {
            props.push((ns.clone(), local.clone()));
        }
        if ns == DAV_NS {
            match local.as_str() {
                "allprop" => wanted = Some(Wanted::All),
                "propname" => wanted = Some(Wanted::Names),
                "prop" if prop_depth.is_none() => {
                    prop_depth = Some(depth + 1);
                    if empty {
                        wanted = Some(Wanted::Some(Vec::new()));
                    }
                }
                _ => {}
            }
        }
        if !empty {
            depth += 1;
        }
    }
    Ok(wanted.unwrap_or(Wanted::All))
}

/// One resource of a multistatus answer.
struct Resource {
    href: String,
    name: String,
    dir: bool,
    size: u64,
    modified: SystemTime,
    etag: Option<String>,
}

impl Resource {
    fn of_node(href: String, node: &Node) -> Self {
        let v = Validators::of(node);
        Self { href, name: node.name_lossy(), dir: node.is_dir(), size: node.size, modified: v.modified, etag: v.etag }
    }

    fn folder(href: String, name: &str, time: chrono::DateTime<chrono::Utc>) -> Self {
        let secs = u64::try_from(time.timestamp()).unwrap_or(0);
        Self {
            href,
            name: name.to_string(),
            dir: true,
            size: 0,
            modified: UNIX_EPOCH + Duration::from_secs(secs),
            etag: None,
        }
    }

    /// The value of a DAV: property, `None` when this resource has none.
    fn prop(&self, name: &str) -> Option<String> {
        Some(match name {
            "displayname" => format!("<D:displayname>{}</D:displayname>", escape(self.name.as_str())),
            "getcontentlength" if !self.dir => format!("<D:getcontentlength>{}</D:getcontentlength>", self.size),
            "getlastmodified" => {
                format!("<D:getlastmodified>{}</D:getlastmodified>", httpdate::fmt_http_date(self.modified))
            }
            "creationdate" => {
                let t: chrono::DateTime<chrono::Utc> = self.modified.into();
                format!("<D:creationdate>{}</D:creationdate>", t.format("%Y-%m-%dT%H:%M:%SZ"))
            }
            "getetag" => format!("<D:getetag>{}</D:getetag>", partial_escape(self.etag.as_deref()?)),
            "getcontenttype" if !self.dir => {
                let mime = mime_guess::from_path(&self.name).first_or_octet_stream();
                format!("<D:getcontenttype>{}</D:getcontenttype>", escape(mime.essence_str()))
            }
            "resourcetype" if self.dir => "<D:resourcetype><D:collection/></D:resourcetype>".into(),
            "resourcetype" => "<D:resourcetype/>".into(),
            "supportedlock" => "<D:supportedlock><D:lockentry><D:lockscope><D:exclusive/></D:lockscope>\
                                <D:locktype><D:write/></D:locktype></D:lockentry></D:supportedlock>"
                .into(),
            "lockdiscovery" => "<D:lockdiscovery/>".into(),
            _ => return None,
        })
    }

    fn write(&self, wanted: &Wanted, out: &mut dyn Write) -> std::io::Result<()> {
        let mut found = String::new();
        let mut missing = String::new();
        match wanted {
            Wanted::All => LIVE_PROPS.iter().filter_map(|p| self.prop(p)).for_each(|p| found.push_str(&p)),
            Wanted::Names => LIVE_PROPS.iter().for_each(|p| found.push_str(&format!("<D:{p}/>"))),
            Wanted::Some(list) => {
                for (ns, local) in list {
                    match (ns == DAV_NS).then(|| self.prop(local)).flatten() {
                        Some(p) => found.push_str(&p),
                        None => missing.push_str(&format!(
                            "<x:{} xmlns:x=\"{}\"/>",
                            escape(local.as_str()),
                            escape(ns.as_str())
                        )),
                    }
                }
            }
        }
        write!(out, "<D:response><D:href>{}</D:href>", escape(self.href.as_str()))?;
        if !found.is_empty() || missing.is_empty() {
            write!(out, "<D:propstat><D:prop>{found}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>")?;
        }
        if !missing.is_empty() {
            write!(
                out,
                "<D:propstat><D:prop>{missing}</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>"
            )?;
        }
        out.write_all(b"</D:response>\n")
    }
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">\n";
const FOOT: &str = "</D:multistatus>\n";

async fn read_body(body: Body) -> Result<bytes::Bytes, MountError> {
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| MountError::BadRequest(format!("request body over {BODY_LIMIT} bytes")))
}

pub async fn propfind(st: &Shared, path: &str, headers: &HeaderMap, body: Body) -> Result<Response, MountError> {
    let depth = headers.get("Depth").and_then(|d| d.to_str().ok()).unwrap_or("infinity").trim().to_ascii_lowercase();
    let children = match depth.as_str() {
        "0" => false,
        "1" => true,
        _ => {
            let mut r = text(StatusCode::FORBIDDEN, "");
            *r.body_mut() = Body::from(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n",
            );
            r.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/xml; charset=utf-8"));
            return Ok(r);
        }
    };
    let wanted = parse_propfind(&read_body(body).await?)?;
    let base = if path.ends_with('/') { path.to_string() } else { format!("{path}/") };
    let place = st.place(path).await?;
    let mut listed = Vec::new();
    let tree = match place {
        Place::Sources => {
            let snaps = st.call(|s| s.snapshots()).await?;
            listed.push(Resource::folder(base.clone(), "", snaps.last().map(|s| s.time).unwrap_or_default()));
            if children {
                for (label, list) in layout::sources(&snaps) {
                    let time = list.last().map(|s| s.time).unwrap_or_default();
                    listed.push(Resource::folder(format!("{base}{}/", encode_label(label)), label, time));
                }
            }
            None
        }
        Place::Source(label) => {
            let snaps = st.call(|s| s.snapshots()).await?;
            let own: Vec<_> = snaps.iter().filter(|s| s.source == label).collect();
            listed.push(Resource::folder(base.clone(), &label, own.last().map(|s| s.time).unwrap_or_default()));
            if children {
                for s in &own {
                    let name = layout::snapshot_name(s);
                    listed.push(Resource::folder(format!("{base}{}/", encode_label(&name)), &name, s.time));
                }
                if let Some(last) = own.last() {
                    listed.push(Resource::folder(format!("{base}{LATEST}/"), LATEST, last.time));
                }
            }
            None
        }
        Place::Tree(t) => Some(*t),
    };
    let Some(tree) = tree else {
        let mut out = Vec::from(HEAD);
        for r in &listed {
            r.write(&wanted, &mut out).map_err(|e| MountError::io("PROPFIND", e))?;
        }
        out.extend_from_slice(FOOT.as_bytes());
        return Ok(multistatus(Body::from(out)));
    };
    let (snap, inner) = (tree.snapshot.id, tree.path.clone());
    let node = st.call(move |s| s.stat(&snap, &inner)).await?;
    let node = match node {
        Some(n) if matches!(n.kind, NodeKind::Dir | NodeKind::File) => n,
        _ => return Err(MountError::NotFound(path.to_string())),
    };
    let own_href = if node.is_dir() { base.clone() } else { path.to_string() };
    let mut me = Resource::of_node(own_href, &node);
    if tree.path.is_empty() {
        me.name = layout::snapshot_name(&tree.snapshot);
    }
    if !(children && node.is_dir()) {
        let mut out = Vec::from(HEAD);
        me.write(&wanted, &mut out).map_err(|e| MountError::io("PROPFIND", e))?;
        out.extend_from_slice(FOOT.as_bytes());
        return Ok(multistatus(Body::from(out)));
    }
    // A folder's listing streams page by page: a folder of a million
    // entries costs a page of memory, not a million responses.
    let permit = st.streams.clone().acquire_owned().await.map_err(|_| MountError::Other("stopping".into()))?;
    let store = st.store.clone();
    let dir = tree.path.clone();
    Ok(multistatus(streamed(move |out| {
        let _permit = permit;
        out.write_all(HEAD.as_bytes())?;
        me.write(&wanted, out)?;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store.read_dir(&snap, &dir, after.as_deref(), PAGE).map_err(std::io::Error::other)?;
            for n in page.entries.iter().filter(|n| matches!(n.kind, NodeKind::Dir | NodeKind::File)) {
                let slash = if n.is_dir() { "/" } else { "" };
                Resource::of_node(format!("{base}{}{slash}", encode_segment(&n.name)), n).write(&wanted, out)?;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        out.write_all(FOOT.as_bytes())
    })))
}

fn multistatus(body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::MULTI_STATUS;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/xml; charset=utf-8"));
    r
}

/// A lock that locks nothing: clients that insist on locking before they
/// open a file get a token; every write still fails with 403.
pub async fn lock(path: &str, headers: &HeaderMap, body: Body) -> Result<Response, MountError> {
    let _ = read_body(body).await?;
    let token = format!(
        "urn:uuid:{}",
        hex::encode(&vger_format::id::random_id().map_err(|e| MountError::Other(e.to_string()))?[..16])
    );
    let timeout = headers.get("Timeout").and_then(|t| t.to_str().ok()).unwrap_or("Second-3600");
    let timeout = if timeout.starts_with("Second-") || timeout == "Infinite" { timeout } else { "Second-3600" };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery><D:activelock>\
         <D:locktype><D:write/></D:locktype><D:lockscope><D:exclusive/></D:lockscope><D:depth>0</D:depth>\
         <D:timeout>{}</D:timeout><D:locktoken><D:href>{token}</D:href></D:locktoken>\
         <D:lockroot><D:href>{}</D:href></D:lockroot></D:activelock></D:lockdiscovery></D:prop>\n",
        escape(timeout),
        escape(path)
    );
    let mut r = Response::new(Body::from(xml));
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/xml; charset=utf-8"));
    if let Ok(v) = header::HeaderValue::from_str(&format!("<{token}>")) {
        r.headers_mut().insert("Lock-Token", v);
    }
    Ok(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.
mod tests {
    use super::*;

    #[test]
    fn propfind_bodies_name_what_they_want() {
        assert_eq!(parse_propfind(b"").ok(), Some(Wanted::All));
        let all = br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;
        assert_eq!(parse_propfind(all).ok(), Some(Wanted::All));
        let names = br#"<propfind xmlns="DAV:"><propname/></propfind>"#;
        assert_eq!(parse_propfind(names).ok(), Some(Wanted::Names));
        let some = br#"<d:propfind xmlns:d="DAV:" xmlns:o="urn:other"><d:prop><d:getetag/><o:x/><d:resourcetype></d:resourcetype></d:prop></d:propfind>"#;
        assert_eq!(
            parse_propfind(some).ok(),
            Some(Wanted::Some(vec![
                ("DAV:".into(), "getetag".into()),
                ("urn:other".into(), "x".into()),
                ("DAV:".into(), "resourcetype".into())
            ]))
        );
        assert!(parse_propfind(b"<a></b>").is_err(), "mismatched tags are a bad request");
    }
}
