// /studies: the verdict table: claim, newest verdict, the numbers it rests on, and where it came from.
"use strict";
(async function () {
  const box = document.getElementById("studies");
  try {
    const rows = (await getJSON("/api/studies")).map(s => {
      const ival = c => (c.ci_low == null || c.ci_high == null) ? `${fmt(c.mean)} [no interval]` :
        `${fmt(c.mean)} [${fmt(c.ci_low)}, ${fmt(c.ci_high)}]`;
      const measured = (s.checks || []).map(c => `${c.name} = ${ival(c)} (expected ${c.op} ${c.threshold}` +
        (c.relative_to ? `, ${c.relation} to ${c.relative_to}` : "") + ")" +
        (c.null_mean != null ? `; null ${fmt(c.null_mean)}` : ""));
      if (s.reason) measured.push(s.reason);
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
