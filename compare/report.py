"""Reports of a comparison: ``compare.md``, a self-contained ``compare.html``, ``compare.json``.

The HTML page needs no network: CSS and the small table-sorting script are inline, plots are
embedded as base64 PNG, and a Content-Security-Policy forbids loading anything else.  Its
script also checks itself on load (tables, plots decoded) and writes the result into
``#selfcheck``; with ``#selftest`` in the URL it also sorts every table and checks the order.
"""

from __future__ import annotations

import base64
import html
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tabulate import tabulate

from .match import Comparison
from .plots import Plot
from .tables import Table, all_tables

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'")


# --------------------------------------------------------------------------------------------
# Markdown


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(comp: Comparison, tables: list[Table], plots: list[Plot], *,
                    title: str, generated: str, command: str | None = None) -> str:
    out = [f"# {title}", ""]
    out.append(f"Generated {generated} by `python -m compare`"
               + (f" (`{command}`)" if command else "") + ".")
    out.append(f"Groups along **{comp.by}**: "
               + ", ".join(f"`{g.label}`" for g in comp.groups)
               + f"; ratios are against the base group `{comp.base.label}`.")
    out.append("")
    for w in comp.warnings:
        out.append(f"> **Note:** {w}")
        out.append("")
    for t in tables:
        out.append(f"## {t.title}")
        out.append("")
        if t.note:
            out.append(t.note)
            out.append("")
        if t.rows:
            rows = [[_md_escape(c) for c in r] for r in t.text_rows()]
            align = ["right" if n else "left" for n in t.numeric] or None
            out.append(tabulate(rows, headers=[_md_escape(h) for h in t.headers],
                                tablefmt="github", colalign=align, disable_numparse=True))
        else:
            out.append("_(empty)_")
        out.append("")
        if t.id == "latency" and plots:
            out.append("## Plots")
            out.append("")
            for p in plots:
                out.append(f"![{p.title}](plots/{p.name})")
                out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------------
# HTML

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#222;
 max-width:100%;}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
nav a{margin-right:1rem}
.note{color:#555;font-size:.9rem;max-width:70rem}
.warn{background:#fff4d6;border-left:4px solid #e0a800;padding:.4rem .8rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f2f2f2;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
td.faster{background:#e3f4e3}td.slower{background:#fbe3e0}td.noise{color:#777}
td.untested{color:#777;font-style:italic}td.missing{color:#a00;font-style:italic}
td.status{color:#a00}
tr:hover td{background:#f7f7ff}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85rem;color:#555}
details pre{font-size:.75rem;background:#f8f8f8;padding:.5rem;max-height:30rem;overflow:auto}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var errors = [];
  window.addEventListener("error", function (e) { errors.push(String(e.message)); });

  function sortValue(td) {
    var s = td.getAttribute("data-sort");
    if (s === null) { return td.textContent.trim(); }
    if (s === "") { return null; }
    var f = Number(s);
    return isNaN(f) ? s : f;
  }
  function compare(a, b) {
    if (typeof a === "number" && typeof b === "number") { return a - b; }
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }
  function sortTable(table, col, dir) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (r1, r2) {
      var a = sortValue(r1.cells[col]), b = sortValue(r2.cells[col]);
      if (a === null && b === null) { return 0; }
      if (a === null) { return 1; }   // blanks last in both directions
      if (b === null) { return -1; }
      return dir * compare(a, b);
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (i === col) { th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending"); }
      else { th.removeAttribute("aria-sort"); }
    });
  }
  function makeSortable(table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.title = "click to sort";
      th.addEventListener("click", function () {
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        sortTable(table, col, dir);
      });
    });
  }
  function isSorted(table, col, dir) {
    var vals = Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      return sortValue(r.cells[col]);
    }).filter(function (v) { return v !== null; });
    for (var i = 1; i < vals.length; i++) {
      if (dir * compare(vals[i - 1], vals[i]) > 0) { return false; }
    }
    return true;
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, makeSortable);

  window.addEventListener("load", function () {
    var imgs = document.querySelectorAll("figure img");
    var report = {
      tables: tables.length,
      table_ids: Array.prototype.map.call(tables, function (t) { return t.id; }),
      rows: Array.prototype.map.call(tables, function (t) { return t.tBodies[0].rows.length; }),
      images: imgs.length,
      images_decoded: Array.prototype.filter.call(imgs, function (i) {
        return i.complete && i.naturalWidth > 0;
      }).length,
      sort_checked: false,
      sort_ok: null,
      errors: errors
    };
    if (window.location.hash === "#selftest") {
      var ok = true;
      Array.prototype.forEach.call(tables, function (t) {
        var ths = t.tHead.rows[0].cells;
        for (var c = 0; c < ths.length; c++) {
          ths[c].click();
          ok = ok && isSorted(t, c, 1);
          ths[c].click();
          ok = ok && isSorted(t, c, -1);
        }
      });
      report.sort_checked = true;
      report.sort_ok = ok;
    }
    var out = document.getElementById("selfcheck");
    out.textContent = JSON.stringify(report);
    document.documentElement.setAttribute("data-selfcheck", errors.length ? "errors" : "ok");
  });
})();
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _sort_attr(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ' data-sort=""'
        if math.isinf(value):
            return f' data-sort="{"Infinity" if value > 0 else "-Infinity"}"'
        return f' data-sort="{value!r}"'
    if isinstance(value, int):
        return f' data-sort="{value}"'
    return f' data-sort="{_e(value)}"'


def table_html(t: Table) -> str:
    parts = [f'<div class="scroll"><table class="sortable" id="table-{_e(t.id)}">', "<thead><tr>"]
    parts += [f"<th scope=\"col\">{_e(h)}</th>" for h in t.headers]
    parts.append("</tr></thead><tbody>")
    for row in t.rows:
        parts.append("<tr>")
        for i, c in enumerate(row):
            classes = []
            if t.numeric and i < len(t.numeric) and t.numeric[i]:
                classes.append("num")
            if c.css:
                classes.append(c.css)
            cls = f' class="{" ".join(classes)}"' if classes else ""
            title = f' title="{_e(c.title)}"' if c.title else ""
            parts.append(f"<td{cls}{title}{_sort_attr(c.sort)}>{_e(c.text)}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


def render_html(comp: Comparison, tables: list[Table], plots: list[Plot], *, title: str,
                generated: str, command: str | None = None) -> str:
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="note">Generated {_e(generated)} by <code>python -m compare</code>'
            + (f" (<code>{_e(command)}</code>)" if command else "") + ". Groups along <b>"
            + _e(comp.by) + "</b>: " + ", ".join(f"<code>{_e(g.label)}</code>" for g in comp.groups)
            + f"; ratios against the base group <code>{_e(comp.base.label)}</code>. "
            "Click a column header to sort.</p>"]
    nav = ['<nav>'] + [f'<a href="#{_e(t.id)}">{_e(t.title)}</a>' for t in tables]
    if plots:
        nav.append('<a href="#plots">Plots</a>')
    nav.append('<a href="#env-json">Environment (full)</a></nav>')
    body.append("".join(nav))
    for w in comp.warnings:
        body.append(f'<p class="warn">{_e(w)}</p>')
    for t in tables:
        body.append(f'<section id="{_e(t.id)}"><h2>{_e(t.title)}</h2>')
        if t.note:
            body.append(f'<p class="note">{_e(t.note)}</p>')
        body.append(table_html(t))
        body.append("</section>")
        if t.id == "latency" and plots:
            body.append('<section id="plots"><h2>Plots</h2>')
            for p in plots:
                data = base64.b64encode(p.path.read_bytes()).decode("ascii")
                body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{_e(p.title)}">'
                            f"<figcaption>{_e(p.title)} (plots/{_e(p.name)})</figcaption></figure>")
            body.append("</section>")
    body.append('<section id="env-json"><h2>Environment of each run (full)</h2>')
    seen = set()
    for g in comp.groups:
        for run in g.runs:
            if id(run) in seen:
                continue
            seen.add(id(run))
            env = json.dumps(run.environment, indent=2, sort_keys=True)
            body.append(f"<details><summary>{_e(g.label)}: {_e(run.device)}/{_e(run.run_id)} "
                        f"({_e(run.path)})</summary><pre>{_e(env)}</pre></details>")
    body.append("</section>")
    body.append('<output id="selfcheck" hidden></output>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(body) + f"\n<script>{SCRIPT}</script>\n</body></html>\n")


# --------------------------------------------------------------------------------------------
# JSON


def comparison_json(comp: Comparison) -> dict[str, Any]:
    rows = []
    for row in comp.rows:
        groups = []
        for gi, e in enumerate(row.entries):
            if e is None:
                groups.append({"group": comp.groups[gi].label, "missing": True})
                continue
            q25, med, q75 = e.quartiles
            groups.append({"group": comp.groups[gi].label, "missing": False, "status": e.status,
                           "run_id": e.run.run_id, "device": e.run.device,
                           "provider": e.record.provider, "threads": e.record.threads,
                           "median_s": med, "q25_s": q25, "q75_s": q75, "n": len(e.samples),
                           "ratio": row.ratios[gi].to_dict() if row.ratios[gi] else None})
        rows.append({"cell": {k: v for k, v in row.fields.items()}, "settings": row.settings,
                     "groups": groups})
    return {"by": comp.by, "base": comp.base.label,
            "groups": [g.label for g in comp.groups], "rows": rows, "warnings": comp.warnings}


def write_reports(comp: Comparison, plots: list[Plot], out_dir: str | Path, *,
                  command: str | None = None, generated: str | None = None) -> dict[str, Path]:
    """Write compare.md, compare.html and compare.json into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = generated or datetime.now(timezone.utc).isoformat(timespec="seconds")
    title = f"wavebench comparison by {comp.by}: " + " vs ".join(g.label for g in comp.groups)
    tables = all_tables(comp)
    paths = {"markdown": out_dir / "compare.md", "html": out_dir / "compare.html",
             "json": out_dir / "compare.json"}
    paths["markdown"].write_text(render_markdown(comp, tables, plots, title=title,
                                                 generated=generated, command=command))
    paths["html"].write_text(render_html(comp, tables, plots, title=title, generated=generated,
                                         command=command))
    paths["json"].write_text(json.dumps(comparison_json(comp), indent=1, default=str))
    return paths
