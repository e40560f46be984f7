// Vigil explorer. Reads only the JSON API of the node that served it; writes every value
// as text (textContent, SVG attributes), never as markup. No build step, no libraries.
"use strict";

const POLL_MS = 2000;               // how often the overview asks for new blocks
const LATEST_BLOCKS = 15;           // rows in the overview's block table
const LATEST_TXS = 20;              // rows in the overview's transaction table
const MAX_TX_BLOCKS = 8;            // blocks read to fill the transaction table
const MAX_PROPOSAL_PAGES = 20;      // 50 proposals per page: the explorer lists at most 1000
const PROPOSAL_PAGE = 50;           // the governance contract's MAX_LIST
const MAX_VERSIONS_SHOWN = 50;      // newest versions of one model on its page
const MAX_APPROVAL_LOOKUPS = 100;   // approve_model proposals read to find a version's votes
const SIGNATURE_BLOCKS = 10;        // recent certificates the members page counts signatures in
const ANOMALY_BLOCKS = 1000;        // the API's MAX_ANOMALY_SCAN_BLOCKS: one scan, newest blocks
const COMMIT_DOMAIN = "vigil/commit/v1";

// ------------------------------------------------------------------ DOM helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "onclick" || k === "onsubmit") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const link = (href, text, attrs) => h("a", { href, ...(attrs || {}) }, text);
const badge = (text, cls) => h("span", { class: `badge ${cls || text}` }, text);
const short = (hex, n = 12) => (hex && hex.length > n ? hex.slice(0, n) + "…" : hex || "");
const mono = (text, title) => h("span", { class: "mono", title: title || null }, text);
const shortHash = (hex, n) => mono(short(hex, n), hex);
const panel = (title, ...body) => h("section", { class: "panel" }, title ? h("h2", {}, title) : null, body);
const card = (k, v, id) => h("div", { class: "card" }, h("div", { class: "k" }, k),
  h("div", { class: "v", id: id || null }, v));

// Columns whose cells are right-aligned numbers (their cells carry class "num" too).
const NUMERIC = /^(#|gas|txs|size|yes|no|score|versions|parents|admins|royalties)$/i;

function table(headers, rows, attrs) {
  return h("table", attrs || {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { class: NUMERIC.test(x) ? "num" : null }, x)))),
    h("tbody", {}, rows));
}

function kv(pairs, attrs) {
  return h("table", { class: "kv", ...(attrs || {}) }, h("tbody", {},
    pairs.filter(Boolean).map(([k, v, id]) => h("tr", {}, h("th", {}, k), h("td", { "data-field": id || null }, v)))));
}

function when(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function ago(ms) {
  const secs = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (secs < 60) return `${secs}s ago`;
  if (secs < 3600) return `${Math.round(secs / 60)}m ago`;
  return `${Math.round(secs / 3600)}h ago`;
}

const pct = (x, digits = 1) => `${(100 * x).toFixed(digits)}%`;

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options) {
  let resp;
  try {
    resp = await fetch(path, { headers: { Accept: "application/json" }, ...(options || {}) });
  } catch (err) {
    throw new ApiError(0, "unreachable", `this node did not answer (${err.message})`);
  }
  let body = null;
  try { body = await resp.json(); } catch (_) { body = null; }
  if (!resp.ok) {
    const e = body && body.error ? body.error : { code: "http_error", message: resp.statusText };
    throw new ApiError(resp.status, e.code, e.message);
  }
  return body;
}

async function maybe(path) {
  try { return await api(path); } catch (e) { if (e.status === 404) return null; throw e; }
}

async function query(contract, method, args) {
  const answer = await api(`/v1/contracts/${encodeURIComponent(contract)}/query`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ method, args: args || [] }),
  });
  return vm(answer.result);
}

// A contract value as JSON ($bytes, $tuple, $dict tags) to plain JS: bytes become hex strings.
function vm(v) {
  if (Array.isArray(v)) return v.map(vm);
  if (v && typeof v === "object") {
    if ("$bytes" in v) return v.$bytes;
    if ("$tuple" in v) return v.$tuple.map(vm);
    if ("$dict" in v) return Object.fromEntries(v.$dict.map(([k, x]) => [String(vm(k)), vm(x)]));
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, vm(x)]));
  }
  return v;
}

// What several pages need about the consortium, read once per page view.
const ctx = { status: null, members: null, orgByKey: {}, models: null };

async function loadContext() {
  const [status, members] = await Promise.all([api("/v1/status"), query("governance", "members")]);
  ctx.status = status;
  ctx.members = members || {};
  ctx.orgByKey = {};
  for (const [org, m] of Object.entries(ctx.members)) ctx.orgByKey[m.node_key] = org;
  showNodeLine();
}

async function loadModels() {
  if (!ctx.models) ctx.models = (await api("/v1/models")).models;
  return ctx.models;
}

function modelName(modelId) {
  const m = (ctx.models || []).find((x) => x.model_id === modelId);
  return m ? m.name : null;
}

function orgOf(key) {
  const org = ctx.orgByKey[key];
  return org ? h("span", { title: key }, org) : h("span", { class: "muted", title: key }, `former or unknown validator ${short(key, 8)}`);
}

function showNodeLine() {
  const st = ctx.status;
  const me = ctx.orgByKey[st.node] || short(st.node, 10);
  const line = document.getElementById("node-line");
  line.replaceChildren(h("span", {},
    "Served by ", h("b", {}, me), " · chain ", h("b", {}, st.chain_id),
    " · height ", h("b", { id: "line-height" }, st.height), " · view ", h("b", {}, st.view),
    " · linked to ", h("b", {}, `${st.peers.length} of ${Math.max(0, st.validators.length - 1)}`), " peers",
    st.in_view_change ? h("span", {}, " · ", badge("view change", "notice")) : null));
}

// ------------------------------------------------------------------ hashing (for verification)

// SHA-256 (FIPS 180-4) in plain JS: crypto.subtle exists only in secure contexts, and a
// consortium node is often reached over plain HTTP on a private address.
const K256 = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function sha256(bytes) {
  const bitLen = bytes.length * 8;
  const padded = new Uint8Array(((bytes.length + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLen / 2 ** 32));
  view.setUint32(padded.length - 4, bitLen >>> 0);
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const W = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = view.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(W[i - 15], 7) ^ rotr(W[i - 15], 18) ^ (W[i - 15] >>> 3);
      const s1 = rotr(W[i - 2], 17) ^ rotr(W[i - 2], 19) ^ (W[i - 2] >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, k] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + W[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      k = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += k;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(4 * i, H[i]);
  return out;
}

function fromHex(hex) {
  if (typeof hex !== "string" || hex.length % 2 || /[^0-9a-f]/i.test(hex)) throw new Error("not hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};

// The subset of msgpack the node's canonical encoding uses (no maps; floats only in the
// features of a score transaction).
// decodeAt returns [value, offset after it], so a caller can find where fields end.
function decodeAt(bytes, start) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = start;
  const need = (n) => { if (i + n > bytes.length) throw new Error("truncated msgpack"); };
  const take = (n) => { need(n); const out = bytes.subarray(i, i + n); i += n; return out; };
  const u = (n) => {
    need(n);
    const v = n === 1 ? dv.getUint8(i) : n === 2 ? dv.getUint16(i) : n === 4 ? dv.getUint32(i) : Number(dv.getBigUint64(i));
    i += n;
    return v;
  };
  const sInt = (n) => {
    need(n);
    const v = n === 1 ? dv.getInt8(i) : n === 2 ? dv.getInt16(i) : n === 4 ? dv.getInt32(i) : Number(dv.getBigInt64(i));
    i += n;
    return v;
  };
  const text = (n) => new TextDecoder().decode(take(n));
  const list = (n, depth) => { const out = []; for (let j = 0; j < n; j++) out.push(one(depth + 1)); return out; };
  function one(depth) {
    if (depth > 32) throw new Error("msgpack nested too deep");
    const t = u(1);
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return t - 0x100;
    if ((t & 0xf0) === 0x90) return list(t & 0x0f, depth);
    if ((t & 0xe0) === 0xa0) return text(t & 0x1f);
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return take(u(1));
      case 0xc5: return take(u(2));
      case 0xc6: return take(u(4));
      case 0xca: { need(4); const v = dv.getFloat32(i); i += 4; return v; }
      case 0xcb: { need(8); const v = dv.getFloat64(i); i += 8; return v; }
      case 0xcc: return u(1);
      case 0xcd: return u(2);
      case 0xce: return u(4);
      case 0xcf: return u(8);
      case 0xd0: return sInt(1);
      case 0xd1: return sInt(2);
      case 0xd2: return sInt(4);
      case 0xd3: return sInt(8);
      case 0xd9: return text(u(1));
      case 0xda: return text(u(2));
      case 0xdb: return text(u(4));
      case 0xdc: return list(u(2), depth);
      case 0xdd: return list(u(4), depth);
      default: throw new Error(`msgpack type 0x${t.toString(16)} is not used here`);
    }
  }
  return [one(0), i];
}

function unpack(bytes) {
  const [value, end] = decodeAt(bytes, 0);
  if (end !== bytes.length) throw new Error("trailing bytes after msgpack value");
  return value;
}

// A transaction's id is sha256 of its first six fields as a msgpack array (the signed body);
// the encoded transaction is the same array with the signature as a seventh field.
function txIdOf(raw) {
  if (raw[0] !== 0x97) throw new Error("a transaction encodes as an array of 7 fields");
  let end = 1;
  for (let k = 0; k < 6; k++) end = decodeAt(raw, end)[1];
  return sha256(concat(Uint8Array.of(0x96), raw.subarray(1, end)));
}

function packUint(n) {
  if (n < 0x80) return Uint8Array.of(n);
  if (n < 0x100) return Uint8Array.of(0xcc, n);
  if (n < 0x10000) return Uint8Array.of(0xcd, n >> 8, n & 0xff);
  if (n < 0x100000000) return Uint8Array.of(0xce, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const out = new Uint8Array(9);
  out[0] = 0xcf;
  new DataView(out.buffer).setBigUint64(1, BigInt(n));
  return out;
}

const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));
const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

// RFC 9162, 2.1.3.2: is `leaf` at `index` of a tree of `size` leaves with root `root`?
function merkleIncludes(root, leaf, index, size, path) {
  if (!(index >= 0 && index < size) || path.length > 64) return false;
  let fn = index, sn = size - 1, r = leafHash(leaf);
  for (const p of path) {
    if (p.length !== 32 || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) while (fn !== 0 && fn % 2 === 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && toHex(r) === toHex(root);
}

// Header fields by position (node/app/types.py Header; checked against the JSON by name).
const HEADER_FIELDS = ["chain_id", "height", "prev_hash", "timestamp_ms", "view", "proposer",
  "tx_count", "tx_root", "receipts_root", "state_root", "validators_hash"];

// Is a decoded wire value the value the page shows? (Bytes show as hex; an anchor's
// metadata, pairs on the wire, shows as an object.)
function sameValue(wire, shown) {
  if (wire instanceof Uint8Array) return toHex(wire) === shown;
  if (Array.isArray(wire)) {
    const list = Array.isArray(shown) ? shown : shown && typeof shown === "object" ? Object.entries(shown) : null;
    return list !== null && list.length === wire.length && wire.every((w, k) => sameValue(w, list[k]));
  }
  return wire === shown;
}

// Does the receipt's decoded wire form say what the page shows?
function receiptMatches(wire, tx) {
  const [txHash, status, gas, result, events, error] = wire;
  const r = tx.receipt;
  let same = toHex(txHash) === tx.hash && status === r.status && gas === r.gas_used &&
    error === (r.error || "") && events.length === r.events.length &&
    events.every((e, k) => e[0] === r.events[k].name);
  if (same && tx.tx.kind === "score" && status === "ok") {
    const [modelId, pathSum, outlier, top] = result;
    same = toHex(modelId) === r.result.model_id && pathSum === r.result.path_sum &&
      outlier === r.result.outlier && top.length === r.result.top_features.length &&
      top.every(([name, ppm], k) => name === r.result.top_features[k].feature && ppm === r.result.top_features[k].share_ppm);
  }
  return same;
}

async function ed25519Verify(key, signature, message) {
  if (!(window.crypto && crypto.subtle)) return null;
  try {
    const k = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, k, signature, message);
  } catch (_) {
    return null;  // this browser has no Ed25519 in WebCrypto
  }
}

// The checks a reader's browser can make on a transaction answer, each with what it showed.
async function verifySteps(tx) {
  const steps = [];
  const step = (state, title, detail) => steps.push({ state, title, detail });
  let header, cert;
  try {
    header = unpack(fromHex(tx.verify.header));
    cert = unpack(fromHex(tx.verify.certificate));
  } catch (e) {
    step("fail", "Decode the header and certificate", e.message);
    return steps;
  }
  const hdr = Object.fromEntries(HEADER_FIELDS.map((f, i) => [f, header[i]]));
  const asHex = (v) => (v instanceof Uint8Array ? toHex(v) : v);
  const sameAsJson = HEADER_FIELDS.every((f) => String(asHex(hdr[f])) === String(tx.header[f]));
  step(sameAsJson ? "pass" : "fail", "The header shown is the header the node sent as bytes",
    `${HEADER_FIELDS.length} fields decoded from the raw header and compared`);
  const raw = fromHex(tx.raw);
  let sameTx = false;
  try {
    const [chainId, sender, nonce, validUntil, kind, payload] = unpack(raw);
    sameTx = toHex(txIdOf(raw)) === tx.hash && toHex(sender) === tx.tx.sender &&
      chainId === tx.tx.chain_id && toHex(nonce) === tx.tx.nonce &&
      kind === tx.tx.kind && validUntil === tx.tx.valid_until_height &&
      sameValue(payload, Object.values(tx.tx.payload));
  } catch (_) { sameTx = false; }
  step(sameTx ? "pass" : "fail", "The transaction shown is the one its sender signed",
    "its hash recomputed from the transaction's bytes; every field shown, the payload too, compared with them");
  const txIncluded = merkleIncludes(hdr.tx_root, raw, tx.proof.index, hdr.tx_count,
    tx.proof.path.map(fromHex));
  step(txIncluded ? "pass" : "fail", "The transaction is in the block",
    `Merkle path of ${tx.proof.path.length} hashes from transaction ${tx.proof.index} of ${hdr.tx_count} to tx_root ${short(toHex(hdr.tx_root), 16)}`);
  let receiptIncluded = false;
  let receiptShown = false;
  try {
    const receiptBytes = fromHex(tx.verify.receipt);
    const [ri, rs, rpath] = unpack(fromHex(tx.verify.receipt_proof));
    receiptIncluded = ri === tx.proof.index && rs === hdr.tx_count &&
      merkleIncludes(hdr.receipts_root, receiptBytes, ri, hdr.tx_count, rpath);
    receiptShown = receiptMatches(unpack(receiptBytes), tx);
  } catch (_) { receiptIncluded = false; }
  step(receiptIncluded && receiptShown ? "pass" : "fail", "The receipt shown (status, score, events) is in the block",
    `status, gas, events${tx.tx.kind === "score" ? ", path sum and verdict" : ""} compared with the receipt's bytes; Merkle path to receipts_root ${short(toHex(hdr.receipts_root), 16)}`
    + (receiptIncluded && !receiptShown ? " (the bytes are in the block, but the page was shown other values)" : ""));
  const [height, view, blockHash, votes] = cert;
  const headerHash = sha256(fromHex(tx.verify.header));
  const certifies = toHex(blockHash) === toHex(headerHash) && height === hdr.height;
  step(certifies ? "pass" : "fail", "The certificate is for this header",
    `sha256(header) = ${short(toHex(headerHash), 16)}, certificate for height ${height}, view ${view}`);
  const message = concat(Uint8Array.of(COMMIT_DOMAIN.length), new TextEncoder().encode(COMMIT_DOMAIN),
    Uint8Array.of(32), fromHex(ctx.status.genesis_hash),
    Uint8Array.of(0x93), packUint(height), packUint(view), Uint8Array.of(0xc4, 32), blockHash);
  const validators = new Set(tx.validators || []);
  let good = 0, unchecked = false;
  for (const [key, sig] of votes) {
    const ok = await ed25519Verify(key, sig, message);
    if (ok === null) { unchecked = true; break; }
    if (ok && validators.has(toHex(key))) good += 1;
  }
  const needed = tx.quorum;
  if (unchecked) {
    step("skip", `${votes.length} validators signed (quorum ${needed})`,
      "this browser cannot check Ed25519 signatures here (WebCrypto needs a secure context); the command below does");
  } else {
    step(good >= needed ? "pass" : "fail", `${good} valid commit signatures from the validators of height ${height} (quorum ${needed})`,
      `each signature checked over (height, view, block hash) under ${COMMIT_DOMAIN} and genesis ${short(ctx.status.genesis_hash, 16)}`);
  }
  step("skip", "The validator set follows from your genesis file",
    "this page takes the validator set and genesis hash from this node; the CLI follows every validator-set change from your own genesis file");
  return steps;
}

// ------------------------------------------------------------------ charts (plain SVG)

function barChart(labels, series, opts) {
  const W = 640, H = 220, L = 44, B = 40, T = 12, R = 10;
  const n = labels.length;
  const max = Math.max(1e-9, ...series.flatMap((x) => x.values));
  const bw = (W - L - R) / n;
  const g = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": opts.title });
  for (let t = 0; t <= 4; t++) {
    const y = T + (H - T - B) * (1 - t / 4);
    g.append(s("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#e4e8ef" }));
    g.append(s("text", { x: L - 6, y: y + 4, "text-anchor": "end", "font-size": 10, fill: "#5d6778" }, opts.fmt(max * t / 4)));
  }
  series.forEach((ser, k) => {
    const w = (bw - 4) / series.length;
    ser.values.forEach((v, i) => {
      const bh = (H - T - B) * (v / max);
      const rect = s("rect", { x: L + i * bw + 2 + k * w, y: H - B - bh, width: Math.max(1, w - 1), height: bh, fill: ser.color });
      rect.append(s("title", {}, `${labels[i]}: ${ser.name} ${opts.fmt(v)}`));
      g.append(rect);
    });
  });
  labels.forEach((lab, i) => {
    if (i % opts.every !== 0) return;
    g.append(s("text", { x: L + i * bw + bw / 2, y: H - B + 14, "text-anchor": "middle", "font-size": 10, fill: "#5d6778" }, lab));
  });
  g.append(s("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 11, fill: "#5d6778" }, opts.xLabel));
  return g;
}

function lineChart(points, lines, opts) {
  const W = 640, H = 220, L = 44, B = 40, T = 12, R = 10;
  const xs = points.map((p) => p.x);
  const maxY = Math.max(...points.map((p) => p.y), ...lines.map((l) => l.y)) * 1.15 || 1;
  const minX = Math.min(...xs), maxX = Math.max(...xs);
  const px = (x) => (maxX === minX ? (L + W - R) / 2 : L + (W - L - R) * (x - minX) / (maxX - minX));
  const py = (y) => T + (H - T - B) * (1 - y / maxY);
  const g = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": opts.title });
  for (let t = 0; t <= 4; t++) {
    const y = maxY * t / 4;
    g.append(s("line", { x1: L, x2: W - R, y1: py(y), y2: py(y), stroke: "#e4e8ef" }));
    g.append(s("text", { x: L - 6, y: py(y) + 4, "text-anchor": "end", "font-size": 10, fill: "#5d6778" }, y.toFixed(2)));
  }
  for (const l of lines) {
    g.append(s("line", { x1: L, x2: W - R, y1: py(l.y), y2: py(l.y), stroke: l.color, "stroke-dasharray": "5 4" }));
    g.append(s("text", { x: W - R - 4, y: py(l.y) - 4, "text-anchor": "end", "font-size": 10, fill: l.color }, l.label));
  }
  if (points.length > 1) {
    g.append(s("polyline", { points: points.map((p) => `${px(p.x)},${py(p.y)}`).join(" "), fill: "none", stroke: "#1f5fbf", "stroke-width": 2 }));
  }
  for (const p of points) {
    const dot = s("circle", { cx: px(p.x), cy: py(p.y), r: 4, fill: p.color || "#1f5fbf" });
    dot.append(s("title", {}, p.title));
    g.append(dot);
    if (points.length <= 12) g.append(s("text", { x: px(p.x), y: H - B + 14, "text-anchor": "middle", "font-size": 10, fill: "#5d6778" }, p.x));
  }
  g.append(s("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 11, fill: "#5d6778" }, opts.xLabel));
  return g;
}

function featureBars(top) {
  const W = 520, row = 26, H = row * top.length + 8;
  const g = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "top features" });
  top.forEach((f, i) => {
    const share = f.share_ppm / 1e6;
    const y = 4 + i * row;
    g.append(s("text", { x: 0, y: y + 15, "font-size": 12, fill: "#1c2330" }, f.feature));
    g.append(s("rect", { x: 130, y: y + 3, width: 300, height: 16, fill: "#eef2f8" }));
    g.append(s("rect", { x: 130, y: y + 3, width: Math.max(1, 300 * share), height: 16, fill: "#e0893a" }));
    g.append(s("text", { x: 438, y: y + 15, "font-size": 12, fill: "#1c2330" }, pct(share)));
  });
  return g;
}

// ------------------------------------------------------------------ pages

let pollTimer = null;
let renderSeq = 0;

function page(title, sub, ...body) {
  return h("div", {}, h("h1", {}, title, sub ? h("span", { class: "sub" }, sub) : null), body);
}

async function overview(seq) {
  const root = page("Overview", "latest blocks and transactions, live");
  const cards = h("div", { class: "cards" });
  const blocks = h("div", {}, "Loading blocks…");
  const txs = h("div", {}, "Loading transactions…");
  const updated = h("span", { class: "live small", id: "live" }, "live");
  root.append(cards, h("div", { class: "grid2" },
    panel(h("span", {}, "Latest blocks ", updated), blocks), panel("Latest transactions", txs)));
  let shown = -1;
  async function refresh() {
    const status = await api("/v1/status");
    ctx.status = status;
    showNodeLine();
    cards.replaceChildren(
      card("Height", status.height, "stat-height"),
      card("View", status.view),
      card("Primary", ctx.orgByKey[status.primary] || short(status.primary, 8)),
      card("Validators", status.validators.length),
      card("Mempool", `${status.mempool.txs} txs`),
      card("Recent loop stall", `${status.recent_max_loop_stall_ms} ms`));
    updated.textContent = `live · ${new Date().toLocaleTimeString()}`;
    if (status.height === shown) return;
    shown = status.height;
    if (status.height === 0) {
      blocks.replaceChildren(h("p", { class: "muted" }, "No block committed yet."));
      txs.replaceChildren();
      return;
    }
    const list = await api(`/v1/blocks?limit=${LATEST_BLOCKS}`);
    blocks.replaceChildren(table(["Height", "Time", "Txs", "Proposer", "View", "Signers"],
      list.blocks.map((b) => h("tr", {},
        h("td", {}, link(`#/block/${b.height}`, b.height)),
        h("td", { title: when(b.timestamp_ms) }, ago(b.timestamp_ms)),
        h("td", { class: "num" }, b.tx_count),
        h("td", {}, orgOf(b.proposer)),
        h("td", {}, b.view),
        h("td", {}, `${b.signers} of ${status.validators.length}`))), { id: "latest-blocks" }));
    const rows = [];
    for (const b of list.blocks.slice(0, MAX_TX_BLOCKS)) {
      if (rows.length >= LATEST_TXS) break;
      if (!b.tx_count) continue;
      const block = await api(`/v1/blocks/${b.height}`);
      for (const r of block.receipts.slice().reverse()) {
        if (rows.length >= LATEST_TXS) break;
        rows.push(h("tr", {},
          h("td", {}, link(`#/tx/${r.tx_hash}`, short(r.tx_hash, 14), { class: "mono", title: r.tx_hash })),
          h("td", {}, r.kind, r.events.includes("flagged") ? [" ", badge("flagged")] : null),
          h("td", {}, badge(r.status)),
          h("td", {}, link(`#/block/${b.height}`, b.height))));
      }
    }
    txs.replaceChildren(rows.length
      ? table(["Hash", "Kind", "Status", "Block"], rows, { id: "latest-txs" })
      : h("p", { class: "muted" }, "No transactions in the latest blocks."));
  }
  await refresh();
  pollTimer = setInterval(() => {
    if (seq !== renderSeq) return;
    refresh().catch((e) => { updated.textContent = `not updating: ${e.message}`; updated.className = "small muted"; });
  }, POLL_MS);
  return root;
}

async function blockPage(height) {
  const b = await api(`/v1/blocks/${encodeURIComponent(height)}`);
  const hd = b.header;
  const signed = new Map(b.certificate.votes.map((v) => [v.validator, v.signature]));
  const validators = b.validators.length ? b.validators : [...signed.keys()];
  const nav = h("span", { class: "sub" },
    b.height > 1 ? link(`#/block/${b.height - 1}`, "← previous") : null, " ",
    b.height < ctx.status.height ? link(`#/block/${b.height + 1}`, "next →") : null);
  return h("div", {},
    h("h1", {}, `Block ${b.height}`, nav),
    h("div", { class: "grid2" },
      panel("Header", kv([
        ["Hash", mono(hd.hash), "hash"],
        ["Time", when(hd.timestamp_ms), "time"],
        ["Proposer", orgOf(hd.proposer), "proposer"],
        ["View", hd.view, "view"],
        ["Transactions", hd.tx_count, "tx_count"],
        ["Previous block", b.height > 1 ? link(`#/block/${b.height - 1}`, short(hd.prev_hash, 24), { class: "mono", title: hd.prev_hash }) : mono(short(hd.prev_hash, 24), hd.prev_hash) , "prev_hash"],
        ["Transactions root", mono(hd.tx_root), "tx_root"],
        ["Receipts root", mono(hd.receipts_root), "receipts_root"],
        ["State root", mono(hd.state_root), "state_root"],
        ["Validators hash", mono(hd.validators_hash), "validators_hash"],
        ["Chain", hd.chain_id, "chain_id"],
      ], { id: "block-header" })),
      panel(`Certificate: ${signed.size} of ${validators.length} validators signed (quorum ${b.quorum})`,
        table(["Organisation", "Validator key", "Commit signature"], validators.map((key) =>
          h("tr", {},
            h("td", {}, orgOf(key)),
            h("td", {}, shortHash(key, 16)),
            h("td", {}, signed.has(key) ? [badge("signed", "ok"), " ", shortHash(signed.get(key), 16)] : badge("did not sign", "unknown")))),
        { id: "signers" }),
        h("p", { class: "small muted" }, `Certificate for view ${b.certificate.view}. Check this block yourself: `,
          h("code", {}, `vigil block show ${b.height} --genesis genesis.json`)))),
    panel(`Transactions (${b.receipts.length})`, b.receipts.length ? table(["#", "Hash", "Kind", "Sender", "Status", "Gas", "Events"],
      b.receipts.map((r, i) => h("tr", {},
        h("td", { class: "num" }, i),
        h("td", {}, link(`#/tx/${r.tx_hash}`, short(r.tx_hash, 18), { class: "mono", title: r.tx_hash })),
        h("td", {}, r.kind),
        h("td", {}, shortHash(r.sender, 10)),
        h("td", {}, badge(r.status)),
        h("td", { class: "num" }, r.gas_used),
        h("td", {}, r.events.map((e) => badge(e, e === "flagged" ? "flagged" : "plain")).flatMap((x) => [x, " "])))),
      { id: "block-txs" }) : h("p", { class: "muted" }, "An empty block.")));
}

function pretty(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

async function txPage(hash) {
  const t = await api(`/v1/txs/${encodeURIComponent(hash)}`);
  if (t.status !== "committed") {
    return page("Transaction", "pending", panel(null, kv([["Hash", mono(t.hash)], ["Status", badge("pending")]]),
      h("p", { class: "muted" }, "In this node's mempool, not in a block yet.")));
  }
  const block = await api(`/v1/blocks/${t.height}`);
  t.validators = block.validators;
  t.quorum = block.quorum;
  await loadModels();
  const r = t.receipt;
  const client = await query("governance", "client", [{ $bytes: t.tx.sender }]).catch(() => null);
  const parts = [
    h("div", { class: "grid2" },
      panel("Transaction", kv([
        ["Hash", mono(t.hash), "hash"],
        ["Status", [badge(t.status), " in ", link(`#/block/${t.height}`, `block ${t.height}`, { id: "tx-block-link" }), `, position ${t.index}`], "status"],
        ["Kind", t.tx.kind, "kind"],
        ["Sender", [shortHash(t.tx.sender, 16), client ? ` (${client.org}, ${client.roles.join(", ")})` : ""], "sender"],
        ["Valid until height", t.tx.valid_until_height],
        ["Block time", when(t.header.timestamp_ms)],
      ], { id: "tx-summary" }), h("h2", {}, "Payload"), pretty(t.tx.payload)),
      panel("Receipt", kv([
        ["Status", badge(r.status), "receipt-status"],
        ["Gas used", r.gas_used, "gas"],
        r.error ? ["Error", r.error, "error"] : null,
        ["Events", r.events.length ? r.events.map((e) => badge(e.name, e.name === "flagged" ? "flagged" : "plain")).flatMap((x) => [x, " "]) : "none", "events"],
      ], { id: "receipt" }),
      r.result !== null && !(t.tx.kind === "score" && r.status === "ok") ? [h("h2", {}, "Result"), pretty(r.result)] : null,
      r.events.length ? [h("h2", {}, "Event data"), pretty(r.events)] : null)),
  ];
  if (t.tx.kind === "score" && r.status === "ok") parts.push(scorePanel(t, r.result));
  const steps = h("ol", { class: "steps", id: "verify-steps" }, h("li", {}, "Checking…"));
  parts.push(panel("Verification", h("p", { class: "small muted" },
    "What your browser checked in the node's answer, and what it cannot check on its own:"), steps,
    h("p", { class: "small" }, "To check all of it from your genesis file: ",
      h("code", {}, `vigil tx show ${t.hash} --genesis genesis.json`))));
  const alarm = h("div", {});
  parts.unshift(alarm);
  verifySteps(t).then((list) => {
    steps.replaceChildren(...list.map((x) =>
      h("li", { class: x.state }, h("span", { class: "mark" }, { pass: "✓", fail: "✗", skip: "–" }[x.state]),
        h("div", {}, h("div", {}, x.title), h("div", { class: "detail" }, x.detail)))));
    if (list.some((x) => x.state === "fail")) {
      alarm.replaceChildren(h("div", { class: "error-box", id: "verify-alarm" }, h("strong", {}, "This node's answer failed a check"),
        ": what this page shows does not match the certified block (see Verification below). Do not rely on it; ask another member's node."));
      alarm.className = "panel-gap";
    }
  })
    .catch((e) => steps.replaceChildren(h("li", { class: "fail" }, h("span", { class: "mark" }, "✗"), h("div", {}, `verification stopped: ${e.message}`))));
  return page("Transaction", short(t.hash, 20), parts);
}

function scorePanel(t, result) {
  const name = modelName(result.model_id);
  const flagged = t.receipt.events.find((e) => e.name === "flagged");
  return panel("Anomaly score", h("div", { class: "grid2" },
    kv([
      ["Score", h("strong", {}, result.score === null ? "model not on this node" : result.score.toFixed(4)), "score"],
      ["", h("span", { class: "small muted" }, "scikit-learn's score_samples units: the lower, the more anomalous")],
      ["Verdict", result.outlier ? badge("flagged", "flagged") : badge("normal", "ok"), "verdict"],
      ["Reference", flagged ? String(flagged.data[0]) : (t.tx.payload.reference || "—"), "reference"],
      ["Model", name ? link(`#/model/${name}`, name) : "—", "model"],
      ["Model id", shortHash(result.model_id, 24)],
      ["Path sum (on chain)", result.path_sum, "path_sum"],
    ], { id: "score" }),
    h("div", {}, h("div", { class: "small muted" }, "Top features (share of the anomaly)"), featureBars(result.top_features))));
}

async function anomaliesPage() {
  const models = await loadModels();
  const active = models.filter((m) => m.active !== null);
  const root = page("Anomalies", "flagged scores, score distribution and drift per model");
  for (const m of active) root.append(await driftPanel(m.name));
  if (!active.length) root.append(panel(null, h("p", { class: "muted" }, "No model is active yet.")));
  const since = Math.max(1, ctx.status.height - ANOMALY_BLOCKS + 1);
  const found = await api(`/v1/anomalies?since=${since}`);
  const rows = found.anomalies.slice().reverse().map((a) => h("tr", {},
    h("td", {}, link(`#/block/${a.height}`, a.height)),
    h("td", {}, link(`#/tx/${a.tx}`, short(a.tx, 16), { class: "mono", title: a.tx })),
    h("td", {}, a.reference),
    h("td", {}, modelName(a.model_id) || short(a.model_id, 10)),
    h("td", { class: "num" }, a.score === null ? "—" : a.score.toFixed(4))));
  root.append(panel(`Flagged scores since height ${since} (${found.anomalies.length})`, rows.length
    ? table(["Height", "Transaction", "Reference", "Model", "Score"], rows, { id: "anomalies" })
    : h("p", { class: "muted" }, "Nothing flagged in these blocks.")));
  return root;
}

async function driftPanel(name) {
  const d = await api(`/v1/models/${encodeURIComponent(name)}/drift`);
  const labels = d.edges.map((e) => Number(e).toFixed(3));
  const binLabels = ["<" + labels[0], ...labels.slice(0, -1).map((l, i) => `${l}–${labels[i + 1]}`), "≥" + labels[labels.length - 1]];
  const share = (xs) => { const n = xs.reduce((a, b) => a + b, 0); return xs.map((x) => (n ? x / n : 0)); };
  const series = [];
  if (d.training) series.push({ name: "training", values: share(d.training), color: "#9db7e6" });
  series.push({ name: "all committed scores", values: share(d.total), color: "#e0893a" });
  const hist = barChart(binLabels, series, { title: `score histogram of ${name}`, fmt: (v) => pct(v, 0), every: 3, xLabel: "anomaly score (−score; higher is more anomalous)" });
  const points = d.history.map((p) => ({ x: p.window + 1, y: p.psi, title: `window ${p.window + 1} (closed at height ${p.height}): PSI ${p.psi.toFixed(3)}`,
    color: p.psi >= d.alarm ? "#b42318" : p.psi >= d.notice ? "#b26a00" : "#1d7a46" }));
  const drift = points.length
    ? lineChart(points, [{ y: d.notice, label: `notice ${d.notice}`, color: "#b26a00" }, { y: d.alarm, label: `alarm ${d.alarm}`, color: "#b42318" }],
      { title: `drift of ${name}`, xLabel: "window" })
    : h("p", { class: "muted" }, `No window closed yet: ${d.count} of ${d.window} scores in the first.`);
  return h("section", { class: "panel", "data-model": name },
    h("h2", {}, link(`#/model/${name}`, name), " ", badge(d.level === "unknown" ? "no window yet" : d.level, d.level), " ",
      h("span", { class: "small muted" }, d.psi === null ? "no PSI yet" : `PSI ${d.psi.toFixed(3)} in window ${d.windows}`)),
    h("div", { class: "grid2" },
      h("div", {}, h("div", { class: "small muted" }, "Score distribution: training vs committed"), hist,
        h("div", { class: "legend" }, d.training ? h("span", {}, h("i", { class: "train" }), "training") : null,
          h("span", {}, h("i", { class: "seen" }), `committed (${d.total.reduce((a, b) => a + b, 0)} scores)`))),
      h("div", {}, h("div", { class: "small muted" }, `Population stability index per window of ${d.window} scores`), drift,
        h("div", { class: "small muted" }, `Current window: ${d.count} of ${d.window} scores. Verified: `, h("code", {}, `vigil model drift ${name} --genesis genesis.json`)))));
}

async function allProposals() {
  const out = [];
  for (let page_ = 0; page_ < MAX_PROPOSAL_PAGES; page_++) {
    const got = await query("governance", "proposals", [1 + page_ * PROPOSAL_PAGE, PROPOSAL_PAGE]);
    out.push(...got);
    if (got.length < PROPOSAL_PAGE) break;
  }
  return out;
}

async function governancePage() {
  const list = (await allProposals()).reverse();
  const rows = list.map((p) => h("tr", {},
    h("td", {}, link(`#/proposal/${p.id}`, `#${p.id}`)),
    h("td", {}, p.kind),
    h("td", {}, p.proposer),
    h("td", {}, badge(p.status)),
    h("td", { class: "num" }, p.yes),
    h("td", { class: "num" }, p.no),
    h("td", {}, p.created),
    h("td", {}, p.executed_at === null ? (p.status === "open" ? `until ${p.expires}` : "—") : p.executed_at)));
  const params = await Promise.all(["proposal_ttl", "drift_window", "drift_notice_ppm", "drift_alarm_ppm"]
    .map((n) => query("governance", "param", [n]).then((v) => [n, v]).catch(() => [n, "—"])));
  return page("Governance", `${list.length} proposals`,
    panel("Proposals", rows.length ? table(["Id", "Action", "Proposer", "Status", "Yes", "No", "Created", "Executed"], rows, { id: "proposals" })
      : h("p", { class: "muted" }, "No proposal yet.")),
    panel("Some parameters", kv(params.map(([n, v]) => [n, String(v)]))));
}

async function proposalPage(id) {
  const p = await query("governance", "get", [Number(id)]);
  if (!p) throw new ApiError(404, "not_found", `no proposal ${id}`);
  const orgs = Object.keys(ctx.members).sort();
  const voted = p.votes || {};
  const yes = Object.values(voted).filter(Boolean).length;
  return page(`Proposal #${p.id}`, p.kind,
    h("div", { class: "grid2" },
      panel("Proposal", kv([
        ["Action", p.kind, "kind"],
        ["Status", badge(p.status), "status"],
        ["Proposed by", p.proposer, "proposer"],
        ["Created at height", link(`#/block/${p.created}`, p.created)],
        ["Expires at height", p.expires],
        ["Executed at height", p.executed_at === null ? "—" : link(`#/block/${p.executed_at}`, p.executed_at)],
      ], { id: "proposal" }),
      h("h2", {}, "Dry run when proposed"), h("p", { class: "dry-run", id: "dry-run" }, p.dry_run),
      h("h2", {}, "Arguments"), pretty(p.args)),
      panel(`Votes: ${yes} yes, ${Object.keys(voted).length - yes} no, of ${orgs.length} members`,
        table(["Member", "Vote"], orgs.map((org) => h("tr", {}, h("td", {}, org),
          h("td", {}, org in voted ? badge(voted[org] ? "yes" : "no") : badge("not voted", "unknown")))), { id: "votes" }),
        h("p", { class: "small muted" }, "Votes of organisations no longer members are kept but no longer count."))));
}

async function modelsPage() {
  const models = await loadModels();
  return page("Models", `${models.length} model names`, panel(null, models.length
    ? table(["Name", "Versions", "Active version", "Active model id"], models.map((m) => h("tr", {},
      h("td", {}, link(`#/model/${m.name}`, m.name)), h("td", { class: "num" }, m.versions),
      h("td", {}, m.active === null ? badge("none", "unknown") : `v${m.active}`),
      h("td", {}, m.model_id ? shortHash(m.model_id, 24) : "—"))), { id: "models" })
    : h("p", { class: "muted" }, "No model approved yet.")));
}

async function approvalsByModelId() {
  const byId = {};
  const list = (await allProposals()).filter((p) => p.kind === "approve_model").slice(-MAX_APPROVAL_LOOKUPS);
  for (const summary of list) {
    const p = await query("governance", "get", [summary.id]);
    if (p && p.args && p.args.model_id) byId[p.args.model_id] = p;
  }
  return byId;
}

async function modelPage(name) {
  const models = await loadModels();
  const m = models.find((x) => x.name === name);
  if (!m) throw new ApiError(404, "not_found", `no model named ${name}`);
  const first = Math.max(1, m.versions - MAX_VERSIONS_SHOWN + 1);
  const versions = [];
  for (let v = m.versions; v >= first; v--) versions.push(await query("models", "version", [name, v]));
  const approvals = await approvalsByModelId();
  const history = await query("models", "history", [name]);
  const rows = versions.map((rec) => {
    const p = approvals[rec.model_id];
    const total = Object.values(rec.contributors).reduce((a, b) => a + b, 0);
    return h("tr", {},
      h("td", {}, `v${rec.version}`, rec.version === m.active ? [" ", badge("active", "ok")] : null),
      h("td", {}, shortHash(rec.model_id, 20)),
      h("td", { class: "num" }, rec.size),
      h("td", {}, Object.entries(rec.contributors).map(([org, w]) => h("div", {}, `${org}: ${w} (${pct(w / total, 0)})`))),
      h("td", {}, rec.anchors.length ? rec.anchors.map((d) => h("div", {}, link(`#/anchor/${d}`, short(d, 14), { class: "mono", title: d }))) : "—"),
      h("td", {}, p ? [link(`#/proposal/${p.id}`, `#${p.id}`), ": ", Object.entries(p.votes).map(([o, y]) => `${o} ${y ? "yes" : "no"}`).join(", ")] : "—"),
      h("td", {}, link(`#/block/${rec.approved_at}`, rec.approved_at)));
  });
  return page(`Model ${name}`, m.active === null ? "no active version" : `active v${m.active}`,
    panel(`Versions (${m.versions})`, table(["Version", "Model id", "Size", "Contributors (weight)", "Trained on anchors", "Approval votes", "Approved at"], rows, { id: "versions" }),
      h("p", { class: "small muted" }, "Verified: ", h("code", {}, `vigil model list ${name} --genesis genesis.json`))),
    panel("Activations", history.length ? table(["Height", "Version"], history.slice().reverse().map(([ht, v]) =>
      h("tr", {}, h("td", {}, link(`#/block/${ht}`, ht)), h("td", {}, `v${v}`)))) : h("p", { class: "muted" }, "Never activated.")),
    m.active !== null ? h("p", {}, link("#/anomalies", "Score distribution and drift →")) : null);
}

async function membersPage() {
  const latest = await api(`/v1/blocks?limit=${SIGNATURE_BLOCKS}`);
  const signedCount = {};
  for (const b of latest.blocks) {
    const full = await api(`/v1/blocks/${b.height}`);
    for (const v of full.certificate.votes) signedCount[v.validator] = (signedCount[v.validator] || 0) + 1;
  }
  const balances = await query("royalties", "balances").catch(() => ({}));
  const fee = await query("governance", "param", ["score_fee"]).catch(() => null);
  const st = ctx.status;
  const linked = new Set(st.peers);
  const rows = Object.entries(ctx.members).sort().map(([org, m]) => {
    const state = m.node_key === st.node ? badge("this node", "ok")
      : linked.has(m.node_key) ? badge("linked", "ok") : badge("not linked", "bad");
    return h("tr", {},
      h("td", {}, h("strong", {}, org)),
      h("td", {}, state, m.node_key === st.primary ? [" ", badge("primary", "notice")] : null),
      h("td", {}, `${signedCount[m.node_key] || 0} of ${latest.blocks.length}`),
      h("td", { class: "num", "data-balance": org }, String(balances[org] || 0)),
      h("td", {}, shortHash(m.node_key, 16)),
      h("td", {}, mono(m.peer)), h("td", {}, mono(m.api)),
      h("td", { class: "num" }, m.admins.length));
  });
  return page("Members", `${rows.length} organisations`, panel(null,
    table(["Organisation", "Node (seen from this node)", "Signed recent blocks", "Royalties", "Node key", "Peer address", "API address", "Admins"], rows, { id: "members" }),
    h("p", { class: "small muted" }, `Link state is this node's view; signatures are counted in the certificates of the last ${latest.blocks.length} blocks. `,
      `Royalties: each score pays the fee (now ${fee === null ? "—" : fee}) to the scored model's contributors, split by the training rows each anchored; a negative balance is fees owed. `,
      "Verified: ", h("code", {}, "vigil contract query royalties balances --genesis genesis.json"))));
}

async function anchorsPage(after) {
  const got = await api(`/v1/anchors?limit=100${after ? `&after=${encodeURIComponent(after)}` : ""}`);
  const list = got.anchors.slice().sort((a, b) => b.height - a.height);
  const rows = list.map((a) => h("tr", {},
    h("td", {}, link(`#/anchor/${a.digest}`, short(a.digest, 20), { class: "mono", title: a.digest })),
    h("td", {}, link(`#/block/${a.height}`, a.height)),
    h("td", {}, a.media_type), h("td", { class: "num" }, a.size),
    h("td", { class: "num" }, a.parents.length)));
  return page("Anchors", "dataset digests on chain (raw data stays off chain)", panel(null, rows.length
    ? table(["Digest", "Height", "Media type", "Size", "Parents"], rows, { id: "anchors" })
    : h("p", { class: "muted" }, "Nothing anchored yet."),
    got.next ? h("p", {}, link(`#/anchors/${got.next}`, "Next page →")) : null));
}

function lineageGraph(center, ancestors, descendants) {
  const all = new Map([[center.digest, center], ...ancestors.map((a) => [a.digest, a]), ...descendants.map((d) => [d.digest, d])]);
  const level = new Map([[center.digest, 0]]);
  for (let frontier = [center]; frontier.length;) {        // parents: one column left per step
    const next = [];
    for (const a of frontier) for (const p of a.parents) {
      if (all.has(p) && !level.has(p)) { level.set(p, level.get(a.digest) - 1); next.push(all.get(p)); }
    }
    frontier = next;
  }
  const children = new Map();
  for (const d of descendants) for (const p of d.parents) {
    if (!children.has(p)) children.set(p, []);
    children.get(p).push(d);
  }
  for (let frontier = [center]; frontier.length;) {        // children: one column right per step
    const next = [];
    for (const a of frontier) for (const c of children.get(a.digest) || []) {
      if (!level.has(c.digest)) { level.set(c.digest, level.get(a.digest) + 1); next.push(c); }
    }
    frontier = next;
  }
  const columns = new Map();
  for (const [d, l] of level) { if (!columns.has(l)) columns.set(l, []); columns.get(l).push(all.get(d)); }
  const levels = [...columns.keys()].sort((a, b) => a - b);
  const BW = 170, BH = 46, GX = 70, GY = 18;
  const rowsMax = Math.max(...[...columns.values()].map((c) => c.length));
  const W = levels.length * (BW + GX) - GX + 20, H = rowsMax * (BH + GY) - GY + 20;
  const pos = new Map();
  levels.forEach((l, ci) => {
    const col = columns.get(l).sort((a, b) => a.height - b.height);
    const offset = (H - (col.length * (BH + GY) - GY)) / 2;
    col.forEach((a, ri) => pos.set(a.digest, { x: 10 + ci * (BW + GX), y: offset + ri * (BH + GY) }));
  });
  const g = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "lineage", id: "lineage", role: "img", "aria-label": "lineage graph",
    width: W, height: H });
  g.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#7b8aa6" }))));
  for (const [d, a] of all) {
    if (!pos.has(d)) continue;
    for (const p of a.parents) {
      if (!pos.has(p)) continue;
      const from = pos.get(p), to = pos.get(d);
      g.append(s("line", { x1: from.x + BW, y1: from.y + BH / 2, x2: to.x, y2: to.y + BH / 2, stroke: "#7b8aa6", "stroke-width": 1.4, "marker-end": "url(#arrow)" }));
    }
  }
  for (const [d, p] of pos) {
    const a = all.get(d);
    const node = s("g", { class: `lineage-node${d === center.digest ? " selected" : ""}`, transform: `translate(${p.x},${p.y})`, "data-digest": d },
      s("rect", { width: BW, height: BH, rx: 6 }),
      s("text", { x: 9, y: 19, class: "mono" }, short(d, 16)),
      s("text", { x: 9, y: 36, class: "meta" }, `${a.media_type} · h${a.height}`),
      s("title", {}, d));
    node.addEventListener("click", () => { location.hash = `#/anchor/${d}`; });
    g.append(node);
  }
  return g;
}

async function anchorPage(digest) {
  const got = await api(`/v1/anchors/${encodeURIComponent(digest)}`);
  const a = got.anchor;
  const lineageRows = (list, what) => list.length ? table(["Digest", "Height", "Media type"], list.map((x) => h("tr", {},
    h("td", {}, link(`#/anchor/${x.digest}`, short(x.digest, 20), { class: "mono", title: x.digest })),
    h("td", {}, x.height), h("td", {}, x.media_type)))) : h("p", { class: "muted" }, `No ${what}.`);
  return page("Anchor", short(a.digest, 20),
    h("div", { class: "grid2" },
      panel("Record", kv([
        ["Digest (SHA-256)", mono(a.digest), "digest"],
        ["Anchored in", [link(`#/block/${a.height}`, `block ${a.height}`), " by ", link(`#/tx/${a.tx}`, "transaction " + short(a.tx, 12))], "height"],
        ["Size", `${a.size} bytes`],
        ["Media type", a.media_type],
        ["Sender", shortHash(a.sender, 16)],
        ["Metadata", Object.keys(a.metadata || {}).length ? pretty(a.metadata) : "none"],
        ["Models trained on it", (got.models || []).length
          ? got.models.map((m) => h("div", {}, link(`#/model/${m.name}`, `${m.name} v${m.version}`)))
          : "none", "models"],
      ], { id: "anchor" })),
      panel(`Lineage: ${got.ancestors.length} ancestors, ${got.descendants.length} descendants`,
        h("h2", {}, "Derived from"), lineageRows(got.ancestors, "ancestors"),
        h("h2", {}, "Used by"), lineageRows(got.descendants, "descendants"))),
    panel("Lineage graph (older on the left; click a dataset to open it)", lineageGraph(a, got.ancestors, got.descendants),
      h("p", { class: "small muted" }, "Verified: ", h("code", {}, `vigil proof export --anchor ${a.digest} --out anchor.proof`), " then ",
        h("code", {}, "vigil proof verify anchor.proof --genesis genesis.json"))));
}

// ------------------------------------------------------------------ search and routing

async function search(text) {
  const q = text.trim().toLowerCase();
  if (!q) return null;
  if (/^\d{1,18}$/.test(q)) return `#/block/${Number(q)}`;
  if (/^[a-z][a-z0-9_]{0,63}$/.test(q)) {
    const models = await loadModels();
    if (models.some((m) => m.name === q)) return `#/model/${q}`;
  }
  if (!/^[0-9a-f]{64}$/.test(q)) return null;
  if (await maybe(`/v1/txs/${q}`)) return `#/tx/${q}`;
  if (await maybe(`/v1/anchors/${q}`)) return `#/anchor/${q}`;
  const models = await loadModels();
  const model = models.find((m) => m.model_id === q);
  if (model) return `#/model/${model.name}`;
  const recent = await api("/v1/blocks?limit=100");
  const block = recent.blocks.find((b) => b.hash === q);
  if (block) return `#/block/${block.height}`;
  return null;
}

const ROUTES = [
  [/^#?\/?$/, "home", () => overview(renderSeq)],
  [/^#\/block\/(\d{1,18})$/, "home", (m) => blockPage(m[1])],
  [/^#\/tx\/([0-9a-f]{64})$/, "home", (m) => txPage(m[1])],
  [/^#\/anomalies$/, "anomalies", () => anomaliesPage()],
  [/^#\/governance$/, "governance", () => governancePage()],
  [/^#\/proposal\/(\d{1,18})$/, "governance", (m) => proposalPage(m[1])],
  [/^#\/models$/, "models", () => modelsPage()],
  [/^#\/model\/([a-z][a-z0-9_]{0,63})$/, "models", (m) => modelPage(m[1])],
  [/^#\/members$/, "members", () => membersPage()],
  [/^#\/anchors(?:\/([0-9a-f]{64}))?$/, "anchors", (m) => anchorsPage(m[1])],
  [/^#\/anchor\/([0-9a-f]{64})$/, "anchors", (m) => anchorPage(m[1])],
];

async function render() {
  const seq = ++renderSeq;
  if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  const main = document.getElementById("main");
  const hash = location.hash || "#/";
  const route = ROUTES.find(([re]) => re.test(hash));
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", route && a.dataset.nav === route[1]));
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    if (!route) throw new ApiError(404, "not_found", `no page ${hash}`);
    ctx.models = null;
    await loadContext();
    const content = await route[2](hash.match(route[0]));
    if (seq === renderSeq) main.replaceChildren(content);
  } catch (e) {
    if (seq !== renderSeq) return;
    const what = e instanceof ApiError && e.status === 404 ? "Not found" : "Could not load this page";
    main.replaceChildren(h("div", { class: "error-box", id: "error" }, h("strong", {}, what), `: ${e.message}`));
  }
  document.title = `Vigil explorer · ${(main.querySelector("h1") || { textContent: "" }).textContent}`;
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("search").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = document.getElementById("search-input");
    const target = await search(input.value).catch(() => null);
    if (target) { location.hash = target; input.value = ""; return; }
    document.getElementById("main").replaceChildren(h("div", { class: "error-box", id: "error" },
      h("strong", {}, "Nothing found"), `: no block height, transaction, anchor, block hash or model matches “${input.value.trim()}”.`));
  });
  window.addEventListener("hashchange", render);
  render();
});
