// /runs/{id}: status, one SVG plot per numeric metric (rendered by the server), final metrics, artifacts.
"use strict";
const MAX_PLOTS = 12;
(async function () {
  const id = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const base = `/runs/${encodeURIComponent(id)}`;
  document.getElementById("title").textContent = id;
  try {
    const r = await getJSON(`/api${base}`);
    document.getElementById("summary").textContent =
      `${r.kind || "run"} · ${r.state} · step ${r.step ?? "?"} · ${r.n_metric_rows} metric rows · created ${r.created || "?"}` +
      (r.error ? ` · error: ${r.error}` : "");
    if (r.report_url) {
      document.getElementById("report").replaceChildren(
        el("a", { id: "report-link", href: r.report_url, text: "Open this run's report.html" }));
    }
    const plots = document.getElementById("plots");
    const keys = r.metric_keys.slice(0, MAX_PLOTS);
    plots.replaceChildren(...keys.map(k => el("figure", {},
      el("img", { class: "plot", alt: `${k} against step`, src: `/api${base}/plot.svg?metric=${encodeURIComponent(k)}` }))));
    if (!keys.length) plots.append(el("p", { class: "muted", text: "no numeric metrics logged" }));
    if (r.metric_keys.length > MAX_PLOTS) {
      plots.append(el("p", { class: "muted", text: `${r.metric_keys.length - MAX_PLOTS} more metrics in /api${base}/metrics` }));
    }
    document.getElementById("final").replaceChildren(table(["metric", "value"], Object.entries(r.final)));
    const figs = r.artifacts.filter(a => /\.(png|svg)$/i.test(a)).map(a => el("figure", {},
      el("img", { class: "artifact", alt: a, src: `${base}/artifacts/${encodeURIComponent(a)}` })));
    document.getElementById("artifacts").replaceChildren(el("div", { class: "plots" }, ...figs),
      ...r.artifacts.map(a => el("div", {}, el("a", { href: `${base}/artifacts/${encodeURIComponent(a)}`, text: a }))));
    document.getElementById("config").textContent = JSON.stringify(r.config, null, 2);
  } catch (e) {
    document.getElementById("summary").replaceChildren(el("span", { class: "error", text: e.message }));
  }
})();
