//! `vger mount` against real clients: rclone (listing, copy, ranged cat,
//! refused writes) and curl (ranges, conditional requests, WebDAV
//! methods, the Host check, tokens, the session token on POST), plus the
//! start-up rules (loopback default, a taken port, SIGTERM exits 0).

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;
mod daemonkit;
mod mountkit;

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use common::{assert_diff_clean, run, walk, TestEnv};
use mountkit::{curl, curl_full, have, header, Fixture, HOSTILE};

/// `rclone ARGS` against the mount as an on-the-fly `:webdav:` remote.
fn rclone(url: &str, args: &[&str]) -> common::Run {
    let mut cmd = Command::new("rclone");
    cmd.args(args)
        .args(["--webdav-url", url, "--config", "/dev/null", "-q", "--retries", "1", "--low-level-retries", "1"])
        .env_remove("RCLONE_CONFIG");
    run(cmd)
}

#[test]
fn rclone_lists_copies_and_reads_ranges_and_cannot_write() {
    if !have("rclone", "rclone") {
        return;
    }
    let fx = Fixture::new();
    let mount = fx.mount(&[]);
    let latest = format!("{}/files/latest/", mount.url);

    // lsjson -R equals the source tree (symbolic links have no WebDAV form).
    let r = rclone(&latest, &["lsjson", "-R", ":webdav:"]);
    assert_eq!(r.code, 0, "{r:?}");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    let got: BTreeMap<String, (bool, u64)> = listed
        .iter()
        .map(|e| {
            let size = if e["IsDir"].as_bool().unwrap() { 0 } else { e["Size"].as_u64().unwrap() };
            (e["Path"].as_str().unwrap().to_string(), (e["IsDir"].as_bool().unwrap(), size))
        })
        .collect();
    let want: BTreeMap<String, (bool, u64)> = walk(&fx.src)
        .into_iter()
        .filter(|(_, md)| !md.file_type().is_symlink())
        .map(|(p, md)| (p.to_string_lossy().into_owned(), (md.is_dir(), if md.is_dir() { 0 } else { md.len() })))
        .collect();
    assert_eq!(got, want, "rclone's listing of the snapshot equals the source tree");

    // copy of the snapshot equals the source byte for byte.
    let dest = fx.env.path("copied");
    let r = rclone(&latest, &["copy", ":webdav:", dest.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_diff_clean(&fx.src, &dest, &["link-to-readme", "empty-dir"]);

    // cat --offset --count reads the right bytes of a multi-chunk file.
    let big = fs::read(fx.src.join("big.bin")).unwrap();
    let out = Command::new("rclone")
        .args(["cat", ":webdav:big.bin", "--offset", "3000000", "--count", "1500000"])
        .args(["--webdav-url", &latest, "--config", "/dev/null", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, big[3_000_000..4_500_000], "a range across chunk boundaries");

    // Writes fail and change nothing.
    assert_ne!(rclone(&latest, &["mkdir", ":webdav:new-folder"]).code, 0, "mkdir must fail");
    let local = fx.env.path("upload.txt");
    fs::write(&local, "upload").unwrap();
    assert_ne!(rclone(&latest, &["copyto", local.to_str().unwrap(), ":webdav:docs/upload.txt"]).code, 0);
    let r = rclone(&latest, &["lsf", ":webdav:docs"]);
    assert!(!r.stdout.contains("upload.txt") && !r.stdout.contains("new-folder"), "{}", r.stdout);
}

#[test]
fn curl_ranges_conditionals_methods_and_host_check() {
    if !have("curl", "curl") {
        return;
    }
    let fx = Fixture::new();
    let mount = fx.mount(&[]);
    let big = fs::read(fx.src.join("big.bin")).unwrap();
    let url = format!("{}/files/latest/big.bin", mount.url);

    // Whole file, with validators.
    let (status, headers, body) = curl_full(&[&url]);
    assert_eq!(status, 200);
    assert_eq!(body, big);
    let etag = header(&headers, "etag").unwrap().to_string();
    let modified = header(&headers, "last-modified").unwrap().to_string();
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));

    // The ETag is the same for the same content in the other snapshot.
    let first = fx.env.list_json()[0]["id"].as_str().unwrap()[..8].to_string();
    let (_, dirs) = curl(&["-X", "PROPFIND", "-H", "Depth: 1", &format!("{}/files/", mount.url)]);
    let older =
        dirs.split("<D:href>").filter_map(|h| h.split("</D:href>").next()).find(|h| h.contains(&first)).unwrap();
    let (_, h2, _) = curl_full(&["-I", &format!("{}{older}big.bin", mount.url)]);
    assert_eq!(header(&h2, "etag"), Some(etag.as_str()), "etag from chunk IDs, equal across snapshots");

    // Single, suffix and open ranges.
    let (status, headers, body) = curl_full(&["-H", "Range: bytes=100-199", &url]);
    assert_eq!((status, body.as_slice()), (206, &big[100..200]));
    assert_eq!(header(&headers, "content-range"), Some(format!("bytes 100-199/{}", big.len()).as_str()));
    let (status, _, body) = curl_full(&["-H", "Range: bytes=-1000", &url]);
    assert_eq!((status, body.as_slice()), (206, &big[big.len() - 1000..]));
    let (status, _, body) = curl_full(&["-H", &format!("Range: bytes={}-", big.len() - 10), &url]);
    assert_eq!((status, body.as_slice()), (206, &big[big.len() - 10..]));

    // Multiple ranges: multipart/byteranges holding each part.
    let (status, headers, body) = curl_full(&["-H", "Range: bytes=0-9,2097150-2097160,-5", &url]);
    assert_eq!(status, 206);
    let ct = header(&headers, "content-type").unwrap();
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").unwrap();
    let parts: Vec<&[u8]> = split_multipart(&body, boundary);
    assert_eq!(parts.len(), 3, "three parts");
    assert_eq!(parts[0], &big[0..10]);
    assert_eq!(parts[1], &big[2097150..2097161]);
    assert_eq!(parts[2], &big[big.len() - 5..]);

    // Past the end: 416 with the size.
    let (status, headers, _) = curl_full(&["-H", &format!("Range: bytes={}-", big.len() + 1), &url]);
    assert_eq!(status, 416);
    assert_eq!(header(&headers, "content-range"), Some(format!("bytes */{}", big.len()).as_str()));

    // Conditional requests.
    assert_eq!(curl(&["-o", "/dev/null", "-H", &format!("If-None-Match: {etag}"), &url]).0, 304);
    assert_eq!(curl(&["-o", "/dev/null", "-H", "If-None-Match: \"other\"", &url]).0, 200);
    assert_eq!(curl(&["-o", "/dev/null", "-H", &format!("If-Modified-Since: {modified}"), &url]).0, 304);
    assert_eq!(curl(&["-o", "/dev/null", "-H", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT", &url]).0, 200);
    assert_eq!(curl(&["-o", "/dev/null", "-H", "If-Match: \"other\"", &url]).0, 412);
    let (status, _, body) = curl_full(&["-H", "Range: bytes=0-3", "-H", &format!("If-Range: {etag}"), &url]);
    assert_eq!((status, body.len()), (206, 4), "If-Range with the current etag keeps the range");
    let (status, _, body) = curl_full(&["-H", "Range: bytes=0-3", "-H", "If-Range: \"stale\"", &url]);
    assert_eq!((status, body.len()), (200, big.len()), "a stale If-Range gets the whole file");

    // Every write method is refused, and nothing appears.
    for method in ["PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH"] {
        let (status, body) = curl(&["-X", method, "-H", "Destination: /files/latest/x", "--data", "x", &url]);
        assert_eq!(status, 403, "{method}");
        assert!(body.contains("read-only"), "{method}: {body}");
    }
    assert_eq!(curl(&["-o", "/dev/null", &format!("{}/files/latest/x", mount.url)]).0, 404);

    // PROPFIND: depth infinity refused, depth 0 and 1 answered.
    let dir = format!("{}/files/latest/docs/", mount.url);
    let (status, body) = curl(&["-X", "PROPFIND", "-H", "Depth: infinity", &dir]);
    assert_eq!(status, 403);
    assert!(body.contains("propfind-finite-depth"), "{body}");
    assert_eq!(curl(&["-X", "PROPFIND", &dir]).0, 403, "no Depth header means infinity");
    let (status, body) = curl(&["-X", "PROPFIND", "-H", "Depth: 1", &dir]);
    assert_eq!(status, 207);
    for want in
        ["readme.txt", "reports/", "<D:collection/>", "<D:getcontentlength>", "<D:getetag>", "<D:getlastmodified>"]
    {
        assert!(body.contains(want), "PROPFIND depth 1 lacks {want}: {body}");
    }
    let (status, body) = curl(&["-X", "PROPFIND", "-H", "Depth: 0", &dir]);
    assert_eq!(status, 207);
    assert!(!body.contains("readme.txt"), "depth 0 lists only the folder itself");
    let only_etag =
        r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:nosuch/></d:prop></d:propfind>"#;
    let (status, body) = curl(&[
        "-X",
        "PROPFIND",
        "-H",
        "Depth: 0",
        "--data",
        only_etag,
        &format!("{}/files/latest/big.bin", mount.url),
    ]);
    assert_eq!(status, 207);
    assert!(body.contains(&etag) && body.contains("404 Not Found") && !body.contains("getcontentlength"), "{body}");

    // OPTIONS and the fake lock.
    let (_, headers, _) = curl_full(&["-X", "OPTIONS", &dir]);
    assert_eq!(header(&headers, "dav"), Some("1, 2"));
    let (status, headers, _) = curl_full(&["-X", "LOCK", "--data", "<lockinfo/>", &url]);
    assert_eq!(status, 200);
    assert!(header(&headers, "lock-token").is_some());

    // The Host header must name this server (DNS rebinding).
    let (status, _) = curl(&["-H", "Host: evil.example:80", &url]);
    assert_eq!(status, 403);
    let port = mount.host_port().rsplit(':').next().unwrap();
    assert_eq!(curl(&["-o", "/dev/null", "-H", &format!("Host: localhost:{port}"), &url]).0, 200);
    assert_eq!(curl(&["-o", "/dev/null", "-H", "Host: 127.0.0.1:1", &url]).0, 403, "wrong port");

    // Search across the source's snapshots: a file under a folder that did
    // not change is found once (added), a changed one twice.
    let (status, found) = curl(&[&format!("{}/files/latest/?api=find&q=*.txt&scope=source", mount.url)]);
    assert_eq!(status, 200, "{found}");
    let found: serde_json::Value = serde_json::from_str(&found).unwrap();
    let changes = |path: &str| -> Vec<String> {
        let m = found["matches"].as_array().unwrap().iter().find(|m| m["path"] == path).unwrap();
        m["versions"].as_array().unwrap().iter().map(|v| v["change"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(changes("docs/reports/2026/q3-report.txt"), ["added"]);
    assert_eq!(changes("docs/readme.txt"), ["added", "modified"]);
    assert_eq!(changes("docs/added.txt"), ["added"]);

    // Archives of a folder.
    let (status, headers, body) = curl_full(&[&format!("{}/files/latest/docs/?download=tar.gz", mount.url)]);
    assert_eq!(status, 200);
    assert!(header(&headers, "content-disposition").unwrap().contains("docs.tar.gz"));
    let out = fx.env.path("untar");
    fs::create_dir_all(&out).unwrap();
    fs::write(fx.env.path("docs.tar.gz"), body).unwrap();
    let r = run({
        let mut c = Command::new("tar");
        c.arg("-xzf").arg(fx.env.path("docs.tar.gz")).arg("-C").arg(&out);
        c
    });
    assert_eq!(r.code, 0, "{r:?}");
    assert_diff_clean(&fx.src.join("docs"), &out.join("docs"), &[]);
}

/// The parts of a multipart/byteranges body.
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delim = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, delim.as_bytes()) {
        rest = &rest[at + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let data = &rest[head_end + 4..];
        let end = find(data, delim.as_bytes()).unwrap();
        parts.push(&data[..end]);
        rest = &data[end..];
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn public_binds_need_the_flag_and_a_token_and_tokens_are_checked() {
    if !have("curl", "curl") {
        return;
    }
    let env = TestEnv::new();
    env.config_with(&[], "");
    let r = env.run(["mount", "--address", "0.0.0.0:0"]);
    r.one_line_error(&["not a loopback address", "--allow-public"]);
    let r = env.run(["mount", "--address", "0.0.0.0:0", "--allow-public"]);
    r.one_line_error(&["VGER_MOUNT_TOKEN"]);

    let fx = Fixture::new();
    let token = "s3cret-token-for-tests";
    let mount = fx.mount_env(&["--address", "0.0.0.0:0", "--allow-public"], &[("VGER_MOUNT_TOKEN", token)]);
    let port = mount.url.rsplit(':').next().unwrap();
    let url = format!("http://127.0.0.1:{port}/files/latest/docs/readme.txt");
    assert!(mount.printed.iter().any(|l| l.contains("loopback")), "says restores are off: {:?}", mount.printed);
    assert_eq!(curl(&["-o", "/dev/null", &url]).0, 401);
    assert_eq!(curl(&["-o", "/dev/null", "-u", "anyone:wrong", &url]).0, 401);
    assert_eq!(curl(&["-o", "/dev/null", "-u", &format!("anyone:{token}"), &url]).0, 200);
    assert_eq!(curl(&["-o", "/dev/null", "-H", &format!("Authorization: Bearer {token}"), &url]).0, 200);
}

#[test]
fn a_cross_site_post_is_refused_and_a_restore_with_the_session_token_works() {
    if !have("curl", "curl") {
        return;
    }
    let fx = Fixture::new();
    let mount = fx.mount(&[]);
    let docs = format!("{}/files/latest/docs/", mount.url);
    let target = fx.env.path("restored");
    let body = format!(r#"{{"target":"{}","items":[]}}"#, target.display());
    let post = |extra: &[&str]| {
        let mut args = vec!["-X", "POST", "-H", "Content-Type: application/json", "--data", &body];
        args.extend_from_slice(extra);
        let url = format!("{docs}?api=restore");
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.push(url);
        curl(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Without the page's session token: refused, nothing restored.
    let (status, text) = post(&["-H", "Origin: http://evil.example"]);
    assert_eq!(status, 403, "{text}");
    assert_eq!(post(&[]).0, 403);
    assert!(!target.exists(), "a refused request restores nothing");
    // A GET changes nothing either.
    assert_eq!(curl(&["-o", "/dev/null", &format!("{docs}?api=restore&target=/tmp/x")]).0, 404);

    // The page carries the token; with it (and no foreign Origin) it runs.
    let (_, page) = curl(&["-H", "Accept: text/html", &docs]);
    let token = page.split("name=\"vger-session\" content=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let (status, _) = post(&["-H", &format!("X-Vger-Session: {token}"), "-H", "Origin: http://evil.example"]);
    assert_eq!(status, 403, "a foreign Origin is refused even with the token");
    let (status, started) = post(&["-H", &format!("X-Vger-Session: {token}")]);
    assert_eq!(status, 200, "{started}");
    let job: serde_json::Value = serde_json::from_str(&started).unwrap();
    let id = job["job"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, s) = curl(&[&format!("{}/?api=restore&job={id}", mount.url)]);
        let s: serde_json::Value = serde_json::from_str(&s).unwrap();
        if s["state"] != "running" {
            assert_eq!(s["state"], "done", "{s}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "restore did not finish: {s}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_diff_clean(&fx.src.join("docs"), &target.join("docs"), &[]);
    // Cancelling takes the session token too; a finished job is not running.
    let cancel = format!("{docs}?api=cancel&job={id}");
    assert_eq!(curl(&["-X", "POST", &cancel]).0, 403, "a cancel without the session token is refused");
    let (status, text) = curl(&["-X", "POST", "-H", &format!("X-Vger-Session: {token}"), &cancel]);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not running"), "{text}");
    let no_job = format!("{docs}?api=cancel");
    let (status, text) = curl(&["-X", "POST", "-H", &format!("X-Vger-Session: {token}"), &no_job]);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("job's number"), "{text}");
    // A second restore into the now non-empty target is refused.
    let (status, text) = post(&["-H", &format!("X-Vger-Session: {token}")]);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not empty"), "{text}");
}

#[test]
fn a_taken_port_is_an_error_and_sigterm_exits_zero() {
    let fx = Fixture::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let r = fx.env.run(["mount", "--address", &address]);
    r.one_line_error(&["already in use", "--address"]);

    let mut mount = fx.mount(&[]);
    assert!(mount.printed.iter().any(|l| l.contains("dav://")), "{:?}", mount.printed);
    assert!(mount.printed.iter().any(|l| l.contains("DavWWWRoot")), "{:?}", mount.printed);
    assert_eq!(mount.stop(), 0, "SIGTERM is a clean stop");
}

#[test]
fn hostile_names_come_back_escaped_in_listings() {
    if !have("curl", "curl") {
        return;
    }
    let fx = Fixture::new();
    let mount = fx.mount(&[]);
    let (status, body) = curl(&["-X", "PROPFIND", "-H", "Depth: 1", &format!("{}/files/latest/photos/", mount.url)]);
    assert_eq!(status, 207);
    assert!(!body.contains(HOSTILE), "the raw name must not appear in XML");
    assert!(body.contains("&lt;img src=x onerror=alert(1)&gt;"), "{body}");
    let (status, json) = curl(&[&format!("{}/files/latest/photos/?api=list", mount.url)]);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = v["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&HOSTILE), "{names:?}");
}

#[test]
fn the_daemon_serves_the_mount_beside_its_status_page() {
    if !have("curl", "curl") {
        return;
    }
    let fx = Fixture::new();
    let mut yaml = std::fs::read_to_string(fx.env.config()).unwrap();
    yaml.push_str("schedule:\n  enabled: true\n  every: 24h\n");
    fx.env.write_config(&yaml);
    let mut daemon = daemonkit::spawn(&fx.env, "daemon", &["--http-listen", "127.0.0.1:0", "--mount", "127.0.0.1:0"]);
    let log = daemon.wait_log("snapshots served", std::time::Duration::from_secs(60));
    let url = log.split("snapshots served (WebDAV and web UI) at ").nth(1).unwrap().split_whitespace().next().unwrap();
    let status = daemon.status();
    assert_eq!(status["mount_url"], url, "{status}");
    let (_, page) = daemon.get("/");
    assert!(page.contains(&format!("<a href=\"{url}\">browse snapshots</a>")), "the status page links to the mount");
    let (code, body) = curl(&[&format!("{url}files/latest/docs/readme.txt")]);
    assert_eq!((code, body.as_str()), (200, std::fs::read_to_string(fx.src.join("docs/readme.txt")).unwrap().as_str()));
    daemon.signal(daemonkit::SIGTERM);
    assert_eq!(daemon.wait_exit(std::time::Duration::from_secs(60)), 0);
}

#[test]
fn source_and_snapshot_scopes_serve_at_the_root() {
    if !have("curl", "curl") {
        return;
    }
    let fx = Fixture::new();
    let by_source = fx.mount(&["--source", "files"]);
    let (status, body) = curl(&["-X", "PROPFIND", "-H", "Depth: 1", &format!("{}/", by_source.url)]);
    assert_eq!(status, 207);
    assert!(body.contains("<D:href>/latest/</D:href>") && body.matches("<D:response>").count() == 4, "{body}");
    let (status, text) = curl(&[&format!("{}/latest/docs/readme.txt", by_source.url)]);
    assert_eq!((status, text.as_str()), (200, fs::read_to_string(fx.src.join("docs/readme.txt")).unwrap().as_str()));

    let first = fx.env.list_json()[0]["id"].as_str().unwrap()[..8].to_string();
    let one = fx.mount(&["--snapshot", &first]);
    let (status, text) = curl(&[&format!("{}/docs/readme.txt", one.url)]);
    assert_eq!(
        (status, text.as_str()),
        (200, "hello from vger mount\nsecond line\n"),
        "the older snapshot at the root"
    );
    assert_eq!(curl(&["-o", "/dev/null", &format!("{}/docs/added.txt", one.url)]).0, 404);

    fx.env
        .run(["mount", "--source", "nope", "--address", "127.0.0.1:0"])
        .one_line_error(&["no snapshot of source `nope`"]);
}

#[test]
fn a_big_folder_pages_in_name_order_over_the_api_and_webdav() {
    if !have("curl", "curl") {
        return;
    }
    let env = TestEnv::new();
    let src = env.path("src");
    let big = src.join("big");
    fs::create_dir_all(&big).unwrap();
    let count = 25_000;
    for i in 0..count {
        fs::write(big.join(format!("f{i:06}")), b"").unwrap();
    }
    env.config_with(&[("files", &src)], "");
    env.init();
    env.run(["backup"]).ok();
    let fx = mountkit::Fixture::of(env, src);
    let mount = fx.mount(&[]);
    let url = format!("{}/files/latest/big/", mount.url);
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = match &after {
            Some(a) => format!("{url}?api=list&limit=10000&after={a}"),
            None => format!("{url}?api=list&limit=10000"),
        };
        let (status, body) = curl(&[&page]);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        names.extend(v["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()));
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    let want: Vec<String> = (0..count).map(|i| format!("f{i:06}")).collect();
    assert_eq!(names, want, "every entry once, in name order, across pages");
    let (status, body) = curl(&["-X", "PROPFIND", "-H", "Depth: 1", &url]);
    assert_eq!(status, 207);
    assert_eq!(body.matches("<D:response>").count(), count + 1, "the streamed listing holds every entry");
}
