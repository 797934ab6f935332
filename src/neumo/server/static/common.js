// Shared helpers for neumo pages: fetch JSON (errors carry the API's one-line message), build elements.
"use strict";
async function getJSON(url, options) {
  const res = await fetch(url, options);
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    const msg = body && body.message ? body.message : `HTTP ${res.status}`;
    const err = new Error(msg); err.body = body; err.status = res.status; throw err;
  }
  return body;
}
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
function fmt(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}
function table(headers, rows) {
  const t = el("table");
  t.append(el("tr", {}, ...headers.map(h => el("th", { text: h }))));
  for (const r of rows) t.append(el("tr", {}, ...r.map(c => c instanceof Node ? el("td", {}, c) :
    el("td", { class: typeof c === "number" ? "num" : null, text: fmt(c) }))));
  return t;
}
