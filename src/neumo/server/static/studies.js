// /studies: the verdict table: claim, newest verdict, the numbers it rests on, and where it came from.
"use strict";
(async function () {
  const box = document.getElementById("studies");
  try {
    const rows = (await getJSON("/api/studies")).map(s => {
      const keys = Object.keys(s.expected).length ? Object.keys(s.expected) : Object.keys(s.measured).slice(0, 4);
      const measured = keys.map(k => `${k} = ${fmt(s.measured[k])}` + (s.expected[k] ? ` (expected ${s.expected[k]})` : ""));
      const where = s.report_url ? el("a", { href: s.report_url, text: "report" }) :
        s.run_id ? el("a", { href: `/runs/${encodeURIComponent(s.run_id)}`, text: "run" }) : "";
      return [el("span", { title: s.citation, text: s.id }), s.instrument, s.claim,
        el("span", { class: s.verdict ? `st-${s.verdict}` : "muted", text: s.verdict || "not run" }),
        measured.join("\n"), s.preset || "", where];
    });
    const t = table(["study", "instrument", "claim", "verdict", "measured", "preset", ""], rows);
    t.querySelectorAll("td:nth-child(5)").forEach(td => { td.style.whiteSpace = "pre-line"; });
    box.replaceChildren(t);
  } catch (e) {
    box.replaceChildren(el("p", { class: "error", text: e.message }));
  }
})();
