// The detection page: POST /api/detect, then render each token coloured by its rank bucket (GLTR),
// each sentence underlined by its score, a tooltip per token, the verdict and the detector scores.
"use strict";
const BUCKETS = [[10, "b10", "top-10"], [100, "b100", "top-100"], [1000, "b1000", "top-1000"], [Infinity, "bmore", "beyond 1000"]];

function bucket(rank) {  // rank 1 = the model's most likely token
  if (rank === null || rank === undefined) return ["nopred", "no prediction"];
  for (const [hi, cls, label] of BUCKETS) if (rank <= hi) return [cls, label];
}

function tokenSpan(t, i) {
  const [cls, label] = bucket(t.rank);
  const span = el("span", { class: `tok ${cls}`, "data-i": i, "data-bucket": label }, t.token);
  span.tipData = t;
  return span;
}

function tipText(t) {
  const p = t.logprob === null || t.logprob === undefined ? null : Math.exp(t.logprob);
  const lines = [["token", JSON.stringify(t.token)], ["probability", p === null ? "—" : p.toPrecision(3)],
    ["log-prob", fmt(t.logprob)], ["rank", fmt(t.rank)], ["entropy", t.entropy === null ? "—" : `${fmt(t.entropy)} nats`],
    ["in top-p", t.in_top_p ? "yes" : "no"]];
  if (t.evidence !== undefined && t.evidence !== null) lines.push(["evidence", fmt(t.evidence)]);
  return lines;
}

function showTip(ev, lines) {
  const tip = document.getElementById("tip");
  tip.replaceChildren(...lines.map(([k, v]) => el("div", {}, `${k}: `, el("b", { text: v }))));
  tip.style.display = "block";
  tip.style.left = `${Math.min(ev.clientX + 14, window.innerWidth - 260)}px`;
  tip.style.top = `${ev.clientY + 16}px`;
}
function hideTip() { document.getElementById("tip").style.display = "none"; }

// sentence underline strength: the sentence's score rank within this text, 0 (lowest) .. 1 (highest)
function sentenceStrength(sentences) {
  const order = sentences.map((s, i) => [s.score, i]).filter(([v]) => v !== null && isFinite(v))
    .sort((a, b) => a[0] - b[0]);
  const out = new Array(sentences.length).fill(0);
  order.forEach(([, i], k) => { out[i] = order.length > 1 ? k / (order.length - 1) : 1; });
  return out;
}

function render(res) {
  const box = document.getElementById("rendered");
  const spans = res.tokens.map(tokenSpan);
  const strength = sentenceStrength(res.sentences);
  const parts = [];
  let next = 0;
  res.sentences.forEach((s, si) => {
    while (next < s.start_token && next < spans.length) parts.push(spans[next++]);
    const sent = el("span", { class: "sent", "data-s": si });
    sent.style.borderBottomColor = `rgba(47, 91, 211, ${0.15 + 0.85 * strength[si]})`;
    while (next < s.end_token && next < spans.length) sent.append(spans[next++]);
    sent.tipData = s;
    parts.push(sent);
  });
  while (next < spans.length) parts.push(spans[next++]);
  box.replaceChildren(...parts);

  const v = document.getElementById("verdict");
  v.textContent = res.verdict; v.className = `verdict ${res.verdict}`;
  const th = res.threshold;
  document.getElementById("threshold").textContent = th ?
    `${res.model} · ${res.n_tokens} tokens · ${th.detector} = ${fmt(res.scores[th.detector])} against threshold ` +
    `${fmt(th.value)}, calibrated on "${th.reference}" (${th.n} texts` +
    (th.target_fpr !== null && th.target_fpr !== undefined ? `, target FPR ${fmt(th.target_fpr)}` : "") +
    `, ${th.fitted_at})` + (th.band ? ` · undecided in [${fmt(th.band[0])}, ${fmt(th.band[1])})` : "") +
    (th.calibration ? ` · calibration ${th.calibration}` : "") :
    `${res.model} · ${res.n_tokens} tokens · no calibration given (neumo serve --calibration FILE): verdict undecided`;
  document.getElementById("notes").replaceChildren(...(res.notes || []).map(n => el("li", { text: n })));
  document.getElementById("scores").replaceChildren(table(["detector", "score"], Object.entries(res.scores)));
  document.getElementById("mechanisms").replaceChildren(table(["mechanism", "value"], Object.entries(res.mechanisms || {})));
  const counts = BUCKETS.map(([, cls, label]) => [label, res.tokens.filter(t => bucket(t.rank)[0] === cls).length]);
  document.getElementById("buckets").replaceChildren(table(["bucket", "tokens"], counts));
  document.getElementById("sentences").replaceChildren(table(["#", "score", "", "sentence"],
    res.sentences.map((s, i) => [i + 1, s.score, el("span", { class: "sbar", style: `width:${4 + 80 * strength[i]}px` }), s.text])));
  document.getElementById("result").hidden = false;
}

async function detect() {
  const btn = document.getElementById("detect"), status = document.getElementById("status");
  const text = document.getElementById("text").value;
  if (!text.trim()) { status.textContent = "paste some text first"; status.className = "error"; return; }
  btn.disabled = true; status.className = "muted"; status.textContent = "scoring… (the first request loads the model)";
  const t0 = performance.now();
  try {
    const res = await getJSON("/api/detect", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }) });
    render(res);
    status.textContent = `scored ${res.n_tokens} tokens in ${((performance.now() - t0) / 1000).toFixed(2)} s`;
  } catch (e) {
    status.className = "error"; status.textContent = e.message;
  } finally { btn.disabled = false; }
}

document.getElementById("detect").addEventListener("click", detect);
document.getElementById("text").addEventListener("keydown", ev => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) detect(); });
const rendered = document.getElementById("rendered");
rendered.addEventListener("mousemove", ev => {
  const tok = ev.target.closest(".tok"), sent = ev.target.closest(".sent");
  document.querySelectorAll(".sent.active").forEach(s => { if (s !== sent) s.classList.remove("active"); });
  if (sent) sent.classList.add("active");
  if (tok) {
    const lines = tipText(tok.tipData);
    if (sent) lines.push(["sentence score", fmt(sent.tipData.score)]);
    showTip(ev, lines);
  } else hideTip();
});
rendered.addEventListener("mouseleave", () => { hideTip(); document.querySelectorAll(".sent.active").forEach(s => s.classList.remove("active")); });
