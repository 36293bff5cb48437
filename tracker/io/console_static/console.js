// The identity console: cards pushed by Server-Sent Events, one identity's journey and site map, search by photo.
// No build step, no external resources: this file and console.css ship in the package.
"use strict";
const TOKEN = new URLSearchParams(location.search).get("token");
const PAGE = 48;
const state = { offset: 0, total: 0, version: 0, now: 0, shown: new Map(), selected: null, site: null };
const $ = (id) => document.getElementById(id);

function url(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  if (TOKEN) q.set("token", TOKEN);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
const secs = (t) => `${t.toFixed(1)} s`;
function ago(s) { s = Math.max(0, s); return s < 90 ? `${s.toFixed(0)} s` : s < 5400 ? `${(s / 60).toFixed(0)} min`
  : `${(s / 3600).toFixed(1)} h`; }
function stateText(i, now) { return i.visible ? `visible now in ${i.last_camera}`
  : `last seen ${ago(now - i.last)} ago in ${i.last_camera}`; }
function thumbUrl(gid, which, version) { return url(`thumb/${gid}/${which}.jpg`, { v: version }); }

function card(i) {
  const img = el("img", { alt: `identity ${i.gid}`, loading: "lazy" });
  if (i.thumb) img.src = thumbUrl(i.gid, "best", i.version);
  const cams = el("ol", { class: "cams" });
  for (const [cam, t0, t1] of i.cameras) cams.append(el("li", { "data-camera": cam }, `${cam} ${secs(t0)}–${secs(t1)}`));
  const c = el("div", { class: "card", "data-gid": String(i.gid), "data-version": String(i.version) }, img,
    el("div", {}, el("div", { class: "gid" }, `#${i.gid}`),
      el("div", { class: "state" + (i.visible ? " visible" : "") }, stateText(i, state.now)), cams,
      el("div", { class: "n" }, `${i.sightings} sightings`)));
  c.addEventListener("click", () => showDetail(i.gid));
  if (state.selected === i.gid) c.classList.add("selected");
  return c;
}

async function getJSON(path, params) {
  const r = await fetch(url(path, params), { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

async function loadList() {
  const data = await getJSON("api/identities", { camera: $("f-camera").value, within: $("f-within").value,
                                                 offset: state.offset, limit: PAGE });
  state.total = data.total; state.now = data.now;
  const box = $("cards");
  const keep = new Set(data.identities.map((i) => i.gid));
  for (const [gid, node] of state.shown) if (!keep.has(gid)) { node.remove(); state.shown.delete(gid); }
  let prev = null;
  for (const i of data.identities) {  // reuse unchanged cards (their thumbnails stay loaded)
    let node = state.shown.get(i.gid);
    if (!node || node.dataset.version !== String(i.version)) {
      const fresh = card(i);
      if (node) node.replaceWith(fresh);
      node = fresh; state.shown.set(i.gid, node);
    } else {
      node.querySelector(".state").textContent = stateText(i, data.now);
    }
    if (prev ? prev.nextSibling !== node : box.firstChild !== node) {
      if (prev) prev.after(node); else box.prepend(node);
    }
    prev = node;
  }
  const last = Math.min(state.offset + PAGE, state.total);
  $("page-info").textContent = state.total ? `${state.offset + 1}–${last} of ${state.total}` : "no identities yet";
  $("prev").disabled = state.offset === 0; $("next").disabled = last >= state.total;
}

let pending = null;
function scheduleList() { if (!pending) pending = setTimeout(() => { pending = null; loadList().catch(() => {}); }, 150); }

function feed(e) {
  let text;
  if (e.type === "merged") text = `#${e.merged} merged into #${e.gid} (${e.reason || "registry"})`;
  else if (e.type === "split") text = `#${e.new} split from #${e.gid} in ${e.camera} (${e.reason || "registry"})`;
  else if (e.type === "purged") text = `#${e.gid} purged`;
  else if (e.type === "expired") text = `#${e.gid} expired (retention)`;
  else return;
  $("feed").prepend(el("li", { "data-type": e.type }, text));
}

function connect() {
  const es = new EventSource(url("api/events", { since: state.version }));
  es.addEventListener("update", (m) => {
    const ch = JSON.parse(m.data);
    state.version = ch.version; state.now = ch.now;
    for (const e of ch.events) {
      feed(e);
      for (const gid of [e.gid, e.merged]) {
        if ((e.type === "purged" || e.type === "expired" || e.type === "merged") && gid !== undefined) {
          if (e.type === "merged" && gid === e.gid) continue;
          const node = state.shown.get(gid);
          if (node) { node.remove(); state.shown.delete(gid); }
          if (state.selected === gid) closeDetail();
        }
      }
    }
    scheduleList();
    if (state.selected !== null && ch.updated.some((i) => i.gid === state.selected)) showDetail(state.selected, true);
    $("status").textContent = `live · t=${secs(ch.now)}`;
  });
  es.onerror = () => { $("status").textContent = "reconnecting…"; };
  es.onopen = () => { $("status").textContent = "live"; };
}

// ---------------------------------------------------------------- one identity
function closeDetail() { state.selected = null; $("detail").hidden = true;
  for (const n of document.querySelectorAll(".card.selected")) n.classList.remove("selected"); }

async function showDetail(gid, quiet) {
  let d;
  try { d = await getJSON(`api/identities/${gid}`); } catch (e) { if (!quiet) closeDetail(); return; }
  state.selected = gid;
  for (const n of document.querySelectorAll(".card")) n.classList.toggle("selected", n.dataset.gid === String(gid));
  if (!state.site || !quiet) state.site = await getJSON("api/site");
  $("detail").hidden = false; $("d-gid").textContent = `#${d.gid}`;
  $("d-summary").textContent = `${stateText(d, d.now)} · ${d.sightings} sightings · first seen at ${secs(d.first)}`;
  drawTimeline(d); drawVisits(d); drawSite(d, state.site);
}

function drawTimeline(d) {
  const tl = $("timeline"); tl.replaceChildren();
  const cams = state.site.cameras.map((c) => c.id).filter((c) => d.visits.some((v) => v.camera === c));
  const W = 400, rowH = 22, left = 56, H = rowH * cams.length + 20;
  tl.setAttribute("viewBox", `0 0 ${W} ${H}`); tl.setAttribute("height", H);
  const t0 = d.first, span = Math.max(1e-3, d.last - d.first);
  const x = (t) => left + (W - left - 8) * (t - t0) / span;
  cams.forEach((cam, r) => {
    tl.append(svg("text", { x: 2, y: r * rowH + 15, fill: "#ccc", "font-size": 11 }, cam));
    for (const v of d.visits.filter((v) => v.camera === cam)) {
      const rect = svg("rect", { x: x(v.t0), y: r * rowH + 4, width: Math.max(2, x(v.t1) - x(v.t0)), height: rowH - 8,
                                 fill: "#4a8", "data-visit": v.index });
      rect.append(svg("title", {}, `${cam}: ${secs(v.t0)}–${secs(v.t1)}, ${v.sightings} sightings`));
      tl.append(rect);
    }
  });
  tl.append(svg("text", { x: left, y: H - 4, fill: "#888", "font-size": 10 }, secs(d.first)));
  tl.append(svg("text", { x: W - 50, y: H - 4, fill: "#888", "font-size": 10 }, secs(d.last)));
}

function drawVisits(d) {
  const box = $("visits"); box.replaceChildren();
  for (const v of d.visits) {
    const fig = el("figure", { "data-camera": v.camera });
    if (v.thumb) fig.append(el("img", { src: thumbUrl(d.gid, v.index, d.version), alt: `${v.camera}` }));
    fig.append(el("figcaption", {}, `${v.camera} ${secs(v.t0)}–${secs(v.t1)}`));
    box.append(fig);
  }
}

const COLORS = ["#e66", "#6ae", "#ec4", "#6c6", "#c6e", "#4cc", "#f94", "#aaa"];
function drawSite(d, site) {
  const m = $("sitemap"); m.replaceChildren();
  const color = {}; site.cameras.forEach((c, k) => { color[c.id] = COLORS[k % COLORS.length]; });
  const withFov = site.cameras.filter((c) => c.fov);
  if (site.plane && withFov.length) {  // the ground plane: fields of view and the path
    const pts = withFov.flatMap((c) => c.fov).concat(d.visits.flatMap((v) => v.path.map((p) => [p[0], p[1]])));
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const x0 = Math.min(...xs), y0 = Math.min(...ys), sx = Math.max(...xs) - x0 || 1, sy = Math.max(...ys) - y0 || 1;
    const s = Math.min(380 / sx, 280 / sy);
    const P = (p) => `${(10 + (p[0] - x0) * s).toFixed(1)},${(10 + (p[1] - y0) * s).toFixed(1)}`;
    for (const c of withFov) {
      m.append(svg("polygon", { points: c.fov.map(P).join(" "), fill: color[c.id], "fill-opacity": 0.12,
                                stroke: color[c.id], "data-camera": c.id }));
      m.append(svg("text", { x: P(c.fov[0]).split(",")[0], y: +P(c.fov[0]).split(",")[1] + 12, fill: color[c.id],
                             "font-size": 11 }, c.id));
    }
    for (const v of d.visits) if (v.path.length) {
      m.append(svg("polyline", { points: v.path.map(P).join(" "), fill: "none", stroke: color[v.camera],
                                 "stroke-width": 2, "data-visit": v.index }));
    }
    const lastPts = d.visits.flatMap((v) => v.path).sort((a, b) => a[2] - b[2]);
    if (lastPts.length) { const [px, py] = P(lastPts[lastPts.length - 1]).split(",");
      m.append(svg("circle", { cx: px, cy: py, r: 5, fill: "#fff" })); }
    return;
  }
  // No homographies: a graph of the cameras with written (solid) and learned (dashed) links.
  const n = site.cameras.length, pos = {};
  site.cameras.forEach((c, k) => { const a = 2 * Math.PI * k / n - Math.PI / 2;
    pos[c.id] = [200 + 120 * Math.cos(a), 150 + 110 * Math.sin(a)]; });
  const edge = (l, dashed) => {
    if (!pos[l.a] || !pos[l.b]) return;
    const [x1, y1] = pos[l.a], [x2, y2] = pos[l.b];
    m.append(svg("line", { x1, y1, x2, y2, stroke: dashed ? "#888" : "#ccc", "stroke-dasharray": dashed ? "4 3" : "" }));
    const label = l.kind === "overlap" ? "overlap" : l.max_travel !== undefined ? `${l.min_travel}–${l.max_travel} s` : "";
    m.append(svg("text", { x: (x1 + x2) / 2 + 4, y: (y1 + y2) / 2 - 4, fill: "#aaa", "font-size": 10 }, label));
  };
  site.links.forEach((l) => edge(l, false)); site.learned.forEach((l) => edge(l, true));
  const path = d.visits.map((v) => v.camera);
  for (let k = 1; k < path.length; k++) if (path[k] !== path[k - 1]) {
    const [x1, y1] = pos[path[k - 1]], [x2, y2] = pos[path[k]];
    m.append(svg("line", { x1, y1, x2, y2, stroke: "#4a8", "stroke-width": 3, "stroke-opacity": 0.7 }));
  }
  for (const c of site.cameras) {
    const [cx, cy] = pos[c.id];
    m.append(svg("circle", { cx, cy, r: 18, fill: path.includes(c.id) ? color[c.id] : "#333", "data-camera": c.id }));
    m.append(svg("text", { x: cx - 14, y: cy + 4, fill: "#000", "font-size": 11 }, c.id));
  }
}

// ---------------------------------------------------------------- search by photo
async function search(file) {
  $("search").hidden = false; $("hits").replaceChildren(el("li", {}, "searching…"));
  $("query").src = URL.createObjectURL(file);
  const r = await fetch(url("api/search"), { method: "POST", body: file,
                                            headers: { "Content-Type": file.type || "application/octet-stream" } });
  const hits = $("hits"); hits.replaceChildren();
  if (!r.ok) { hits.append(el("li", { class: "error" }, await r.text())); return; }
  const data = await r.json();
  for (const h of data.hits) {
    const li = el("li", { "data-gid": String(h.gid), "data-score": String(h.score) },
      el("img", { src: thumbUrl(h.gid, h.visit, Date.now()), alt: `#${h.gid}` }),
      el("span", {}, `#${h.gid} · similarity ${h.score.toFixed(3)} · ` +
        (h.visible ? `visible now in ${h.last_camera}` : `last seen ${ago(data.now - h.last)} ago in ${h.last_camera}`)));
    li.addEventListener("click", () => showDetail(h.gid));
    hits.append(li);
  }
  if (!data.hits.length) hits.append(el("li", {}, "no identity with a thumbnail yet"));
}

async function init() {
  $("cameras-link").href = url("./");
  try { state.site = await getJSON("api/site"); } catch (e) { $("status").textContent = String(e); return; }
  for (const c of state.site.cameras) $("f-camera").append(el("option", { value: c.id }, c.id));
  for (const id of ["f-camera", "f-within"]) $(id).addEventListener("change", () => { state.offset = 0; loadList(); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadList(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; loadList(); });
  $("close-detail").addEventListener("click", closeDetail);
  $("close-search").addEventListener("click", () => { $("search").hidden = true; });
  $("upload").addEventListener("change", (e) => { if (e.target.files[0]) search(e.target.files[0]); });
  const drop = $("drop");
  for (const ev of ["dragenter", "dragover"]) document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  document.addEventListener("dragleave", () => drop.classList.remove("over"));
  document.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files[0]) search(e.dataTransfer.files[0]); });
  await loadList();
  connect();
}
init();
