// vger mount's web UI: plain DOM code, no framework, no network beyond this
// server. Every name from a snapshot reaches the page through textContent
// or an attribute set by the DOM API, never through HTML parsing.
"use strict";

const SESSION = document.querySelector('meta[name="vger-session"]').content;
const TITLE = document.querySelector('meta[name="vger-title"]').content;
const ROW_HEIGHT = 34;
const TEXT_PREVIEW = 256 * 1024;
const HEX_PREVIEW = 4096;
const app = document.getElementById("app");

// ---- small helpers -------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function humanSize(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + " " + units[i];
}

function humanTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function api(path, call, params) {
  const q = new URLSearchParams(Object.assign({ api: call }, params || {}));
  const r = await fetch(path + "?" + q.toString(), { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
  return r.json();
}

function hashParams() {
  return new URLSearchParams(location.hash.slice(1));
}

function setHash(params) {
  const s = new URLSearchParams(params).toString();
  history.pushState(null, "", location.pathname + (s ? "#" + s : ""));
  route();
}

function go(href) {
  history.pushState(null, "", href);
  route();
}

function link(href, text, cls) {
  return el("a", { href, class: cls, onclick: (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    go(href);
  } }, text);
}

const EXT = {
  image: ["png", "jpg", "jpeg", "gif", "webp", "bmp", "ico", "svg", "avif"],
  text: ["txt", "md", "log", "csv", "ini", "conf", "cfg", "yaml", "yml", "toml", "json", "xml", "html", "css", "tsv", "rst"],
  code: ["rs", "py", "js", "ts", "go", "c", "h", "cpp", "hpp", "java", "sh", "rb", "pl", "php", "sql", "lua", "kt", "swift"],
  archive: ["zip", "gz", "tgz", "xz", "bz2", "zst", "7z", "tar", "rar"],
  audio: ["mp3", "flac", "ogg", "wav", "m4a", "opus"],
  video: ["mp4", "mkv", "webm", "mov", "avi"],
  pdf: ["pdf"],
};

function typeOf(entry) {
  if (entry.kind !== "file") return entry.kind;
  const name = (entry.name || entry.path || "").split("/").pop();
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  for (const [type, list] of Object.entries(EXT)) if (list.includes(ext)) return type;
  return "file";
}

function icon(entry) {
  return el("span", { class: "icon icon-" + typeOf(entry), "aria-hidden": "true" });
}

// ---- layout --------------------------------------------------------------

let state = { listing: null, entries: [], sort: { key: "name", dir: 1 }, selected: new Set(), cursor: 0 };

function header(crumbs, snapshot) {
  const nav = el("nav", { class: "crumbs", "aria-label": "Breadcrumbs" });
  crumbs.forEach((c, i) => {
    if (i > 0) nav.append(el("span", { class: "sep", "aria-hidden": "true" }, "/"));
    nav.append(i === crumbs.length - 1 ? el("span", { "aria-current": "page" }, c.text) : link(c.href, c.text));
  });
  const bar = el("header", { class: "top" }, link("/", "vger", "brand"), el("span", { class: "title" }, TITLE), nav);
  if (snapshot) {
    const input = el("input", { type: "search", id: "search", placeholder: "Search names (/)", "aria-label": "Search names", value: hashParams().get("q") || "" });
    const scope = el("select", { id: "search-scope", "aria-label": "Search in" },
      el("option", { value: "snapshot" }, "this snapshot"),
      el("option", { value: "source" }, "all snapshots of " + snapshot.source));
    if (hashParams().get("scope") === "source") scope.value = "source";
    const form = el("form", { class: "search", role: "search", onsubmit: (e) => {
      e.preventDefault();
      if (input.value.trim()) setHash({ view: "search", q: input.value.trim(), scope: scope.value });
    } }, input, scope, el("button", { type: "submit" }, "Search"));
    bar.append(form);
  }
  return bar;
}

function crumbsFor(listing) {
  const out = [{ text: "Repository", href: "/" }];
  if (!listing || listing.kind === "sources") return out;
  if (listing.kind === "source") {
    out.push({ text: listing.source, href: location.pathname });
    return out;
  }
  const root = listing.root;
  const parts = root.split("/").filter(Boolean);
  let href = "/";
  for (const p of parts) {
    href += p + "/";
    out.push({ text: decodeURIComponent(p), href });
  }
  let here = root;
  for (const seg of listing.path ? listing.path.split("/") : []) {
    here += encodeURIComponent(seg) + "/";
    out.push({ text: seg, href: here });
  }
  return out;
}

function showError(err) {
  app.replaceChildren(header([{ text: "Repository", href: "/" }]), el("main", {}, el("p", { class: "error", role: "alert" }, String(err.message || err))));
}

// ---- views ---------------------------------------------------------------

async function route() {
  const path = location.pathname;
  const h = hashParams();
  if (!h.get("view") && state.renderedPath === path && state.renderedView === "dir") {
    // Only the preview changed: keep the loaded listing and its scroll.
    const p = h.get("preview");
    if (p !== null) showPreview(p);
    else closePreview();
    return;
  }
  state.renderedPath = path;
  state.renderedView = h.get("view") || "dir";
  try {
    const listing = await api(path, "list");
    state.listing = listing;
    if (listing.kind === "sources") return await viewSources(listing);
    if (listing.kind === "source") return await viewSource(listing);
    const view = h.get("view");
    if (view === "search") return await viewSearch(listing, h.get("q") || "", h.get("scope") || "snapshot");
    if (view === "diff") return await viewDiff(listing, h.get("other") || "");
    if (view === "versions") return await viewVersions(listing, h.get("file"));
    if (view === "textdiff") return await viewTextDiff(listing, h.get("file"), h.get("other"));
    return await viewDir(listing, h.get("preview"));
  } catch (err) {
    showError(err);
  }
}

async function viewSources(listing) {
  const all = (await api("/", "snapshots")).snapshots;
  const main = el("main", {});
  main.append(el("h1", {}, "Sources"));
  const cards = el("div", { class: "cards" });
  for (const s of listing.sources) {
    cards.append(el("div", { class: "card" },
      el("h2", {}, link(s.href, s.name)),
      el("p", {}, `${s.snapshots} snapshot${s.snapshots === 1 ? "" : "s"} · latest ${humanTime(s.latest)} · ${humanSize(s.bytes)}`),
      el("p", { class: "muted" }, "host " + (s.host || "?"))));
  }
  main.append(cards, el("h1", {}, "All snapshots"), snapshotTable(all, true));
  app.replaceChildren(header(crumbsFor(listing)), main);
}

function viewSource(listing) {
  const main = el("main", {},
    el("h1", {}, "Snapshots of ", el("b", {}, listing.source)),
    el("p", {}, link(listing.latest, "Open the latest snapshot →")),
    snapshotTable(listing.snapshots, false));
  app.replaceChildren(header(crumbsFor(listing)), main);
}

function snapshotTable(snaps, withSource) {
  const wrap = el("section", { class: "snapshots" });
  const text = el("input", { type: "search", placeholder: "Filter by host, tag, path", "aria-label": "Filter snapshots" });
  const from = el("input", { type: "date", "aria-label": "From date" });
  const to = el("input", { type: "date", "aria-label": "To date" });
  const source = el("select", { "aria-label": "Source" }, el("option", { value: "" }, "all sources"));
  if (withSource) for (const s of [...new Set(snaps.map((x) => x.source))]) source.append(el("option", { value: s }, s));
  const tbody = el("tbody");
  const render = () => {
    tbody.replaceChildren();
    const t = text.value.toLowerCase();
    const rows = snaps.slice().reverse().filter((s) => {
      if (source.value && s.source !== source.value) return false;
      const day = s.time.slice(0, 10);
      if (from.value && day < from.value) return false;
      if (to.value && day > to.value) return false;
      const hay = [s.host, s.user, s.source, ...s.tags, ...s.paths].join(" ").toLowerCase();
      return !t || hay.includes(t);
    });
    for (const s of rows) {
      tbody.append(el("tr", {},
        el("td", {}, link(s.href, humanTime(s.time))),
        withSource ? el("td", {}, s.source) : null,
        el("td", {}, s.host),
        el("td", { class: "n" }, humanSize(s.bytes)),
        el("td", { class: "n" }, s.files.toLocaleString()),
        el("td", {}, s.tags.map((x) => el("span", { class: "tag" }, x))),
        el("td", { class: "mono" }, s.id.slice(0, 8))));
    }
    if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No snapshot matches.")));
  };
  for (const c of [text, from, to, source]) c.addEventListener("input", render);
  const filters = el("div", { class: "filters" }, text, withSource ? source : null, el("label", {}, "from ", from), el("label", {}, "to ", to));
  const table = el("table", { class: "list" }, el("thead", {}, el("tr", {},
    el("th", {}, "Date"), withSource ? el("th", {}, "Source") : null, el("th", {}, "Host"),
    el("th", { class: "n" }, "Size"), el("th", { class: "n" }, "Files"), el("th", {}, "Tags"), el("th", {}, "ID"))), tbody);
  render();
  wrap.append(filters, table);
  return wrap;
}

// The folder view: pages load in the background; rows are drawn only
// where the viewport is (a folder of 100,000 entries stays smooth).
function viewDir(listing, preview) {
  state.entries = listing.entries.slice();
  state.selected = new Set();
  state.cursor = 0;
  const here = location.pathname;
  const snap = listing.snapshot;
  const count = el("span", { class: "muted", id: "count" });
  const toolbar = el("div", { class: "toolbar" },
    el("a", { class: "button", href: here + "?download=tar.gz", download: "" }, "Download .tar.gz"),
    el("a", { class: "button", href: here + "?download=zip", download: "" }, "Download .zip"),
    compareControl(listing),
    el("button", { type: "button", onclick: () => setHash({ view: "versions", file: "" }) }, "Versions of this folder"),
    listing.restore_allowed ? el("button", { type: "button", id: "restore-open", onclick: () => restoreDialog(listing) }, "Restore…") : null,
    count);
  const headRow = el("div", { class: "row head", role: "row" },
    el("span", { class: "check", role: "columnheader" }, ""),
    sortHeader("name", "Name"), sortHeader("size", "Size"), sortHeader("mtime", "Modified"));
  const spacer = el("div", { class: "spacer" });
  const viewport = el("div", { class: "viewport", tabindex: "0", role: "grid", "aria-label": "Folder contents", id: "grid" }, spacer);
  const side = el("aside", { class: "preview", id: "preview", "aria-label": "Preview" });
  const info = el("p", { class: "snapinfo muted" }, `Snapshot ${snap.id.slice(0, 8)} of ${snap.source} on ${snap.host}, ${humanTime(snap.time)}`);
  const main = el("main", { class: "folder" }, info, toolbar, el("div", { class: "split" }, el("div", { class: "table" }, headRow, viewport), side));
  app.replaceChildren(header(crumbsFor(listing), snap), main);

  let drawn = "";
  const draw = (force) => {
    const total = state.entries.length;
    spacer.style.height = total * ROW_HEIGHT + "px";
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - 5);
    const last = Math.min(total, first + Math.ceil(viewport.clientHeight / ROW_HEIGHT) + 10);
    // Rows are rebuilt only when what they show changed: a click must
    // not land on a row replaced under the pointer.
    const key = [first, last, total, state.cursor, state.sort.key, state.sort.dir, state.selected.size].join(",");
    if (key === drawn && force !== true) return;
    drawn = key;
    const rows = [];
    for (let i = first; i < last; i++) rows.push(entryRow(state.entries[i], i));
    spacer.replaceChildren(...rows);
    count.textContent = `${total.toLocaleString()} entr${total === 1 ? "y" : "ies"}${state.more ? " (loading…)" : ""}`;
  };
  state.draw = draw;
  viewport.addEventListener("scroll", () => draw());
  viewport.addEventListener("keydown", (e) => folderKey(e, viewport));
  window.onresize = () => draw();
  applySort();
  draw();
  loadRest(listing, here);
  if (preview !== null && preview !== undefined) showPreview(preview);
  viewport.focus();
}

async function loadRest(listing, here) {
  let next = listing.next;
  state.more = !!next;
  while (next && location.pathname === here) {
    const page = await api(here, "list", { after: decodeURIComponent(next), limit: 5000 });
    if (location.pathname !== here) return;
    state.entries.push(...page.entries);
    next = page.next;
    state.more = !!next;
    applySort();
    state.draw(true);
  }
}

function sortHeader(key, label) {
  const s = state.sort;
  const arrow = s.key === key ? (s.dir > 0 ? " ▲" : " ▼") : "";
  return el("button", { type: "button", class: "col " + key, role: "columnheader",
    "aria-sort": s.key === key ? (s.dir > 0 ? "ascending" : "descending") : "none",
    onclick: () => {
      state.sort = { key, dir: s.key === key ? -s.dir : 1 };
      applySort();
      const head = document.querySelector(".row.head");
      head.replaceChildren(el("span", { class: "check" }, ""), sortHeader("name", "Name"), sortHeader("size", "Size"), sortHeader("mtime", "Modified"));
      state.draw();
    } }, label + arrow);
}

function applySort() {
  const { key, dir } = state.sort;
  const dirsFirst = (a, b) => (b.kind === "dir") - (a.kind === "dir");
  const cmp = {
    name: (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    size: (a, b) => a.size - b.size,
    mtime: (a, b) => (a.mtime < b.mtime ? -1 : a.mtime > b.mtime ? 1 : 0),
  }[key];
  state.entries.sort((a, b) => dirsFirst(a, b) || dir * cmp(a, b));
}

function entryRow(entry, i) {
  const box = el("input", { type: "checkbox", "aria-label": "Select " + entry.name, tabindex: "-1" });
  box.checked = state.selected.has(entry.href);
  box.addEventListener("change", () => { box.checked ? state.selected.add(entry.href) : state.selected.delete(entry.href); });
  const name = entry.kind === "dir"
    ? link(entry.href, entry.name, "name")
    : el("a", { href: "#", class: "name", onclick: (e) => { e.preventDefault(); openPreview(entry); } }, entry.name);
  if (entry.kind === "symlink") name.append(el("span", { class: "muted" }, " → ", entry.target || ""));
  const row = el("div", { class: "row" + (i === state.cursor ? " cursor" : ""), role: "row", "data-i": i },
    el("span", { class: "check" }, box), el("span", { class: "name-cell" }, icon(entry), name),
    el("span", { class: "size n" }, entry.kind === "dir" ? "" : humanSize(entry.size)),
    el("span", { class: "mtime" }, humanTime(entry.mtime)));
  // Through the CSSOM: the page's policy refuses style attributes.
  row.style.top = i * ROW_HEIGHT + "px";
  row.addEventListener("click", (e) => { if (e.target === row) { state.cursor = i; state.draw(); } });
  return row;
}

function folderKey(e, viewport) {
  const n = state.entries.length;
  if (!n) return;
  const move = (to) => {
    state.cursor = Math.max(0, Math.min(n - 1, to));
    const top = state.cursor * ROW_HEIGHT;
    if (top < viewport.scrollTop) viewport.scrollTop = top;
    if (top + ROW_HEIGHT > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = top + ROW_HEIGHT - viewport.clientHeight;
    state.draw();
  };
  const page = Math.max(1, Math.floor(viewport.clientHeight / ROW_HEIGHT) - 1);
  const entry = state.entries[state.cursor];
  switch (e.key) {
    case "ArrowDown": case "j": move(state.cursor + 1); break;
    case "ArrowUp": case "k": move(state.cursor - 1); break;
    case "PageDown": move(state.cursor + page); break;
    case "PageUp": move(state.cursor - page); break;
    case "Home": move(0); break;
    case "End": move(n - 1); break;
    case "Enter": entry.kind === "dir" ? go(entry.href) : openPreview(entry); break;
    case " ": state.selected.has(entry.href) ? state.selected.delete(entry.href) : state.selected.add(entry.href); state.draw(); break;
    case "Backspace": { const up = document.querySelectorAll(".crumbs a"); if (up.length) go(up[up.length - 1].getAttribute("href")); break; }
    default: return;
  }
  e.preventDefault();
}

function compareControl(listing) {
  const sel = el("select", { "aria-label": "Compare with snapshot", id: "compare" }, el("option", { value: "" }, "Compare with…"));
  api("/", "snapshots").then((r) => {
    for (const s of r.snapshots.filter((x) => x.source === listing.snapshot.source && x.id !== listing.snapshot.id).reverse()) {
      sel.append(el("option", { value: s.name }, humanTime(s.time) + " · " + s.id.slice(0, 8)));
    }
  }).catch(() => null);
  sel.addEventListener("change", () => { if (sel.value) setHash({ view: "diff", other: sel.value }); });
  return sel;
}

function closePreview() {
  const side = document.getElementById("preview");
  if (side) { side.classList.remove("open"); side.replaceChildren(); }
  const grid = document.getElementById("grid");
  if (grid) grid.focus();
}

function openPreview(entry) {
  setHash({ preview: entry.name });
}

async function showPreview(name) {
  const side = document.getElementById("preview");
  const entry = state.entries.find((e) => e.name === name);
  if (!side) return;
  side.classList.add("open");
  if (!entry) { side.replaceChildren(el("p", { class: "muted" }, "Loading…")); return; }
  const close = el("button", { type: "button", class: "close", "aria-label": "Close preview", onclick: () => setHash({}) }, "×");
  const meta = el("dl", {},
    el("dt", {}, "Size"), el("dd", {}, humanSize(entry.size) + ` (${entry.size.toLocaleString()} bytes)`),
    el("dt", {}, "Modified"), el("dd", {}, humanTime(entry.mtime)),
    el("dt", {}, "Mode"), el("dd", { class: "mono" }, entry.mode + " " + entry.user + ":" + entry.group));
  const actions = el("div", { class: "toolbar" },
    entry.kind === "file" ? el("a", { class: "button", href: entry.href + "?download", download: entry.name }, "Download") : null,
    el("button", { type: "button", onclick: () => setHash({ view: "versions", file: entry.name }) }, "Versions"));
  const body = el("div", { class: "preview-body" }, el("p", { class: "muted" }, "Loading preview…"));
  side.replaceChildren(close, el("h2", {}, icon(entry), entry.name), meta, actions, body);
  close.focus();
  side.onkeydown = (e) => { if (e.key === "Escape") setHash({}); };
  if (entry.kind !== "file") { body.replaceChildren(el("p", { class: "muted" }, entry.kind === "symlink" ? "Link to " + entry.target : "No content to show.")); return; }
  const type = typeOf(entry);
  try {
    if (type === "image") {
      body.replaceChildren(el("img", { src: entry.href, alt: entry.name }));
      return;
    }
    const size = type === "text" || type === "code" || entry.size <= TEXT_PREVIEW ? TEXT_PREVIEW : HEX_PREVIEW;
    const r = await fetch(entry.href, { headers: { Range: `bytes=0-${size - 1}` } });
    const bytes = new Uint8Array(await r.arrayBuffer());
    const text = asText(bytes);
    const more = entry.size > bytes.length ? el("p", { class: "muted" }, `First ${humanSize(bytes.length)} of ${humanSize(entry.size)} shown.`) : null;
    if (text !== null) body.replaceChildren(...[el("pre", { class: "text" }, text), more].filter(Boolean));
    else body.replaceChildren(...[el("pre", { class: "hex" }, hexDump(bytes.subarray(0, HEX_PREVIEW))), more || (bytes.length > HEX_PREVIEW ? el("p", { class: "muted" }, `First ${HEX_PREVIEW} bytes shown.`) : null)].filter(Boolean));
  } catch (err) {
    body.replaceChildren(el("p", { class: "error" }, String(err.message || err)));
  }
}

function asText(bytes) {
  if (bytes.includes(0)) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (_) {
    // A cut in the middle of a character at the end is fine.
    try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, Math.max(0, bytes.length - 3))); } catch (_) { return null; }
  }
}

function hexDump(bytes) {
  const lines = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const row = bytes.subarray(off, off + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0")).join(" ").padEnd(47, " ");
    const ascii = Array.from(row, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(off.toString(16).padStart(8, "0") + "  " + hex + "  " + ascii);
  }
  return lines.join("\n");
}

async function viewVersions(listing, file) {
  const here = location.pathname + (file ? encodeURIComponent(file) : "");
  const main = el("main", {}, el("h1", {}, "Versions of ", el("span", { class: "mono" }, file || listing.path || "/")), el("p", { class: "muted" }, "Loading…"));
  app.replaceChildren(header(crumbsFor(listing), listing.snapshot), main);
  const data = await api(here, "versions");
  const tbody = el("tbody");
  data.versions.forEach((v, i) => {
    const prev = data.versions.slice(0, i).reverse().find((p) => p.href);
    tbody.append(el("tr", {},
      el("td", {}, v.href ? link(v.href.endsWith("/") ? v.href : snapshotRootOf(v.href, file) + "#" + new URLSearchParams({ preview: file }), humanTime(v.time)) : humanTime(v.time)),
      el("td", {}, el("span", { class: "change " + v.change }, v.change)),
      el("td", { class: "n" }, v.size === null ? "" : humanSize(v.size)),
      el("td", {}, humanTime(v.mtime)),
      el("td", {}, v.href && !v.href.endsWith("/") ? el("a", { href: v.href + "?download", download: file }, "Download") : null, " ",
        v.href && prev && file && v.change === "modified" ? link(snapshotRootOf(v.href, file) + "#" + new URLSearchParams({ view: "textdiff", file, other: prev.name }), "Text diff") : null)));
  });
  const table = el("table", { class: "list" }, el("thead", {}, el("tr", {}, el("th", {}, "Snapshot"), el("th", {}, "Change"), el("th", { class: "n" }, "Size"), el("th", {}, "Modified"), el("th", {}, ""))), tbody);
  main.replaceChildren(el("h1", {}, "Versions of ", el("span", { class: "mono" }, file || listing.path || "/")),
    el("p", { class: "muted" }, `${data.versions.length} change${data.versions.length === 1 ? "" : "s"} across the snapshots of ${listing.snapshot.source}.`),
    table, el("p", {}, link(location.pathname, "← Back to the folder")));
}

function snapshotRootOf(fileHref, file) {
  return fileHref.slice(0, fileHref.length - encodeURIComponent(file).length);
}

async function viewDiff(listing, other) {
  const main = el("main", {}, el("p", { class: "muted" }, "Comparing…"));
  app.replaceChildren(header(crumbsFor(listing), listing.snapshot), main);
  const d = await api(location.pathname, "diff", { other });
  const s = d.summary;
  const tbody = el("tbody");
  const marks = { added: "+", removed: "-", modified: "M", metadata: "T", type: "~" };
  for (const c of d.changes) {
    tbody.append(el("tr", {},
      el("td", { class: "mono change " + c.change }, marks[c.change] || "?"),
      el("td", {}, link(c.href, c.path + (c.dir ? "/" : ""))),
      el("td", { class: "n" }, c.size_before === null ? "" : humanSize(c.size_before)),
      el("td", { class: "n" }, c.size_after === null ? "" : humanSize(c.size_after))));
  }
  main.replaceChildren(
    el("h1", {}, "Changes from ", humanTime(d.from.time), " to ", humanTime(d.to.time)),
    el("p", { class: "summary" }, `${s.added} added, ${s.removed} removed, ${s.modified} modified, ${s.metadata} metadata only, ${s.type_changed} type changed; +${humanSize(s.bytes_added)} −${humanSize(s.bytes_removed)}`),
    d.truncated ? el("p", { class: "muted" }, "Only the first changes are listed.") : null,
    el("table", { class: "list" }, el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", {}, "Path"), el("th", { class: "n" }, "Before"), el("th", { class: "n" }, "After"))), tbody),
    el("p", {}, link(location.pathname, "← Back to the folder")));
}

async function viewTextDiff(listing, file, other) {
  const main = el("main", {}, el("p", { class: "muted" }, "Comparing…"));
  app.replaceChildren(header(crumbsFor(listing), listing.snapshot), main);
  const d = await api(location.pathname + encodeURIComponent(file), "textdiff", { other });
  const pre = el("div", { class: "textdiff" });
  if (!d.hunks.length) pre.append(el("p", { class: "muted" }, "The two versions are identical."));
  for (const hunk of d.hunks) {
    const block = el("table", { class: "hunk" });
    for (const l of hunk) {
      block.append(el("tr", { class: { "+": "ins", "-": "del", " ": "eq" }[l.tag] },
        el("td", { class: "ln" }, l.old ?? ""), el("td", { class: "ln" }, l.new ?? ""), el("td", { class: "mono" }, l.tag + " " + l.text)));
    }
    pre.append(block);
  }
  main.replaceChildren(el("h1", {}, el("span", { class: "mono" }, file), ": ", humanTime(d.from.time), " → ", humanTime(d.to.time)), pre,
    el("p", {}, link(location.pathname, "← Back to the folder")));
}

async function viewSearch(listing, q, scope) {
  const main = el("main", {}, el("p", { class: "muted" }, "Searching…"));
  app.replaceChildren(header(crumbsFor(listing), listing.snapshot), main);
  const r = await api(location.pathname, "find", { q, scope });
  const list = el("ul", { class: "results" });
  for (const m of r.matches) {
    const last = m.versions[m.versions.length - 1];
    const gone = last && last.change === "removed";
    list.append(el("li", {}, icon(m), " ", link(m.href, m.path + (m.kind === "dir" ? "/" : "")),
      el("span", { class: "muted" }, ` · ${m.versions.length} version${m.versions.length === 1 ? "" : "s"}` + (gone ? " · removed " + humanTime(last.time) : ""))));
  }
  main.replaceChildren(el("h1", {}, `${r.matches.length} match${r.matches.length === 1 ? "" : "es"} for “`, q, "”"),
    el("p", { class: "muted" }, scope === "source" ? `Searched ${r.snapshots} snapshots of ${listing.snapshot.source}.` : "Searched this snapshot below this folder."),
    r.truncated ? el("p", { class: "muted" }, "More paths matched than are listed; refine the pattern.") : null,
    list, el("p", {}, link(location.pathname, "← Back to the folder")));
}

// ---- restore -------------------------------------------------------------

function restoreDialog(listing) {
  const items = [...state.selected];
  const what = items.length ? `${items.length} selected item${items.length === 1 ? "" : "s"}` : (listing.path ? "this folder" : "the whole snapshot");
  const target = el("input", { type: "text", id: "restore-target", required: true, placeholder: "/home/me/restored", "aria-label": "Target folder on this machine" });
  const status = el("div", { class: "restore-status", role: "status" });
  const go = el("button", { type: "submit", id: "restore-start" }, "Restore");
  const stop = el("button", { type: "button", id: "restore-cancel", hidden: true }, "Cancel restore");
  const dialog = el("dialog", { class: "restore" },
    el("form", { method: "dialog", onsubmit: async (e) => {
      e.preventDefault();
      go.disabled = true;
      try {
        const r = await fetch(location.pathname + "?api=restore", {
          method: "POST", headers: { "Content-Type": "application/json", "X-Vger-Session": SESSION },
          body: JSON.stringify({ target: target.value, items }),
        });
        if (!r.ok) throw new Error((await r.text()).trim());
        poll((await r.json()).job, status, go, stop);
      } catch (err) {
        status.replaceChildren(el("p", { class: "error", role: "alert" }, String(err.message || err)));
        go.disabled = false;
      }
    } },
    el("h2", {}, "Restore ", what),
    el("p", {}, "Into a new or empty folder on the machine running vger mount. The paths are kept as in the snapshot."),
    el("label", {}, "Target folder ", target), status,
    el("div", { class: "toolbar" }, go, stop, el("button", { type: "button", onclick: () => { dialog.close(); dialog.remove(); } }, "Close"))));
  document.body.append(dialog);
  dialog.showModal();
  target.focus();
}

// Stops a running restore between files (POST with the session token).
async function cancelRestore(job, status, stop) {
  stop.disabled = true;
  try {
    const r = await fetch(location.pathname + "?api=cancel&job=" + encodeURIComponent(job), { method: "POST", headers: { "X-Vger-Session": SESSION } });
    if (!r.ok) throw new Error((await r.text()).trim());
  } catch (err) {
    status.append(el("p", { class: "error", role: "alert" }, "Cancel failed: " + String(err.message || err)));
    stop.disabled = false;
  }
}

async function poll(job, status, button, stop) {
  stop.hidden = false;
  stop.disabled = false;
  stop.onclick = () => cancelRestore(job, status, stop);
  for (;;) {
    const j = await api("/", "restore", { job });
    const pct = j.total_bytes ? ` (${Math.floor((100 * j.bytes) / j.total_bytes)}%)` : "";
    const stopping = j.cancel_requested && j.state === "running" ? " — cancelling after the files in progress…" : "";
    status.replaceChildren(el("p", {}, `${j.files.toLocaleString()} files, ${humanSize(j.bytes)}${pct}${stopping}`), el("p", { class: "muted mono" }, j.current || ""));
    if (j.state === "running") { await new Promise((r) => setTimeout(r, 500)); continue; }
    stop.hidden = true;
    if (j.state === "cancelled") {
      status.replaceChildren(el("p", { class: "done", id: "restore-cancelled" },
        `Restore cancelled after ${j.files.toLocaleString()} files, ${humanSize(j.bytes)} in ${j.seconds.toFixed(1)} s. What was restored into ${j.target} stays there.`));
      button.disabled = false;
      return;
    }
    if (j.state === "failed") { status.replaceChildren(el("p", { class: "error", role: "alert" }, "Restore failed: " + j.error)); button.disabled = false; return; }
    const s = j.summary;
    status.replaceChildren(el("p", { class: "done", id: "restore-done" },
      `Restored ${s.files} files, ${s.dirs} folders, ${s.links} links, ${humanSize(s.bytes)} into ${j.target} in ${j.seconds.toFixed(1)} s.`),
      ...(s.failures.length ? [el("ul", { class: "error" }, s.failures.map((f) => el("li", {}, f)))] : []));
    return;
  }
}

// ---- start ---------------------------------------------------------------

window.addEventListener("popstate", route);
document.addEventListener("keydown", (e) => {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (e.key === "/" && !typing) {
    const s = document.getElementById("search");
    if (s) { e.preventDefault(); s.focus(); }
  }
});
route();
