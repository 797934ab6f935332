// /runs: every run in the runs dir, newest first, each linking to its page (and its report when it has one).
"use strict";
(async function () {
  const box = document.getElementById("runs");
  try {
    const [runs, health] = await Promise.all([getJSON("/api/runs"), getJSON("/healthz")]);
    document.getElementById("where").textContent = `${runs.length} run(s) in ${health.runs_dir}`;
    const rows = runs.map(r => [
      el("a", { href: `/runs/${encodeURIComponent(r.id)}`, class: "run-link", text: r.id }),
      r.kind, el("span", { class: `state-${r.state}`, text: r.state }), r.step, r.created,
      r.has_report ? el("a", { href: `/runs/${encodeURIComponent(r.id)}/report.html`, text: "report" }) : ""]);
    box.replaceChildren(table(["run", "kind", "state", "step", "created", ""], rows));
  } catch (e) {
    box.replaceChildren(el("p", { class: "error", text: e.message }));
  }
})();
