"""The report's HTML: verdict, failed thresholds, the rules, the chart, per-group and per-slice
tables (failures highlighted), the grouping summary and how to open the result in a notebook.
Self-contained except for the PNG beside it; all text is escaped."""
from __future__ import annotations

import html
import json
import math
import os
import pathlib
from typing import Iterable, List, Optional

from components import interval_metrics
from models.grouped_regression import group_effects
from pipeline.eval_config import RMSE
from pipeline.report.content import ReportContent, SliceRow

GROUPS_CSV = "groups.csv"

_METRICS = ("example_count", RMSE, "mean_squared_error", "mean_absolute_error", "mean_label",
            "mean_prediction", "calibration", interval_metrics.COVERAGE, interval_metrics.WIDTH)

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;font-size:.9em}
th{background:#f2f2f2}td.l,th.l{text-align:left}
tr.fail td{background:#fde0e0}td.fail{background:#f7a8a8;font-weight:bold}
tr.ungated td{color:#777}tr.overall td{font-weight:bold;border-top:2px solid #888}
.verdict{padding:.6em 1em;border-radius:4px;font-size:1.2em;display:inline-block}
.ok{background:#dff3df}.bad{background:#fde0e0}
ul.failures li{color:#a00;font-weight:bold}code{background:#f4f4f4;padding:0 .2em}
pre{background:#f4f4f4;padding:.8em;overflow-x:auto}
"""


def _e(x) -> str:
  return html.escape(str(x))


MAX_TABLE_GROUPS = 50   # more groups: the worst ones and the failing ones here, all in the CSV
MAX_TEXT = 300          # characters of one warning line


def _num(x: Optional[float], spec: str = ".4f") -> str:
  """'-' when absent; a NaN/inf never reaches the page: it says why it is undefined."""
  if x is None:
    return "-"
  if isinstance(x, float) and not math.isfinite(x):
    return "undefined (no rows or a zero denominator)"
  return format(x, spec)


def _pct(x: Optional[float]) -> str:
  return "-" if x is None else f"{100 * x:+.1f}%"


def _table(headers: Iterable[str], rows: List[str]) -> str:
  head = "".join(f"<th{' class=l' if i == 0 else ''}>{_e(h)}</th>" for i, h in enumerate(headers))
  return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _slice_row(r: SliceRow, extra_cells: str = "", css: str = "") -> str:
  classes = " ".join(c for c in (css, "fail" if r.failed else "") if c)
  rmse_cls = " class=fail" if r.failed else ""
  cells = [f"<td class=l>{_e(r.label)}</td>", extra_cells,
           f"<td>{_num(r.candidate.get('example_count'), '.0f')}</td>",
           f"<td{rmse_cls}>{_num(r.candidate.get(RMSE))}</td>",
           f"<td>{_num(r.baseline.get(RMSE))}</td>",
           f"<td{rmse_cls}>{_pct(r.rmse_change)}</td>"]
  cells += [f"<td>{_num(r.candidate.get(m))}</td>" for m in _METRICS[2:]]
  cells.append(f"<td class=l>{_e('; '.join(r.failed))}</td>")
  return f"<tr class='{classes}'>{''.join(cells)}</tr>"


def _metric_headers(names) -> List[str]:
  return (["test rows", "RMSE candidate", "RMSE baseline", "RMSE change"]
          + [names[m] for m in _METRICS[2:]] + ["failed threshold"])


def _shown_groups(c: ReportContent):
  """Every group when few; else the failing ones and the worst by RMSE, up to the cap."""
  if len(c.groups) <= MAX_TABLE_GROUPS:
    return c.groups
  rmse = lambda g: g.candidate.get(RMSE) if g.candidate.get(RMSE) is not None else -1.0  # noqa
  worst = sorted(c.groups, key=lambda g: (not g.failed, -rmse(g)))
  return worst[:MAX_TABLE_GROUPS]


def _group_table(c: ReportContent) -> str:
  rows = []
  for g in _shown_groups(c):
    gated = "-" if g.gated is None else ("yes" if g.gated else "no (too few rows)")
    extra = f"<td>{_num(g.train_rows, 'd')}</td><td>{_e(gated)}</td>"
    rows.append(_slice_row(g, extra, "" if g.gated is not False else "ungated"))
  rows.append(_slice_row(c.overall, "<td></td><td></td>", "overall"))
  table = _table(["group", "train rows", "gated"] + _metric_headers(c.metric_names), rows)
  if len(c.groups) > MAX_TABLE_GROUPS:
    table = (f"<p>{len(c.groups)} groups: the failing ones and the worst by RMSE are listed "
             f"(first {MAX_TABLE_GROUPS}); every group is in <a href=\"{GROUPS_CSV}\">"
             f"{GROUPS_CSV}</a>.</p>") + table
  return table


def _grouping_section(c: ReportContent) -> str:
  g = c.grouping
  if not g:
    return "<p>No grouping artifact.</p>"
  s = g["summary"]
  facts = [("mode", s.get("mode")), ("features", ", ".join(map(str, s.get("features", [])))),
           ("groups", s.get("num_groups")), ("rows fitted on", s.get("fit_rows")),
           ("silhouette", _num(s.get("silhouette"))), ("inertia", _num(s.get("inertia"), ".2f")),
           ("artifact", g["uri"])]
  out = [_table(["", "value"], [f"<tr><td class=l>{_e(k)}</td><td class=l>{_e(v)}</td></tr>"
                                for k, v in facts])]
  counts = s.get("counts", {})
  if counts:
    splits = sorted(counts)
    n = min(max(len(v) for v in counts.values()), MAX_TABLE_GROUPS)
    rows = [f"<tr><td class=l>{i}</td>" + "".join(
        f"<td>{counts[sp][i] if i < len(counts[sp]) else '-'}</td>" for sp in splits) + "</tr>"
            for i in range(n)]
    out.append("<h3>Rows per group and split</h3>" + _table(["group"] + splits, rows)
               + (f"<p>first {n} groups; all in {GROUPS_CSV}</p>" if n == MAX_TABLE_GROUPS
                  else ""))
  if g.get("centroids"):
    cols = g["columns"]
    rows = [f"<tr><td class=l>{i}</td>" + "".join(f"<td>{v:.5g}</td>" for v in cen) + "</tr>"
            for i, cen in enumerate(g["centroids"][:MAX_TABLE_GROUPS])]
    out.append("<h3>Group centres (raw feature units)</h3>" + _table(["group"] + cols, rows))
  if g.get("vocabulary"):
    vocab = g["vocabulary"]
    more = f" ... ({len(vocab)} in all, see {GROUPS_CSV})" if len(vocab) > MAX_TABLE_GROUPS else ""
    out.append("<h3>Categories</h3><p>" + _e(", ".join(
        f"{i}: {v}" for i, v in enumerate(vocab[:MAX_TABLE_GROUPS])) + more)
               + " ; other values: fallback</p>")
  sel = s.get("selection") or []
  if len(sel) > 1:
    keys = [k for k in ("k", "silhouette", "inertia", "min_share", "feasible") if k in sel[0]]
    rows = ["<tr>" + "".join(f"<td{' class=l' if i == 0 else ''}>{_e(c_.get(k))}</td>"
                             for i, k in enumerate(keys)) + "</tr>" for c_ in sel]
    out.append("<h3>Choice of k</h3>" + _table(keys, rows))
  for w in s.get("warnings", []) or []:
    w = str(w)
    out.append(f"<p>warning: {_e(w if len(w) <= MAX_TEXT else w[:MAX_TEXT] + ' ...')}</p>")
  own = (s.get("report") or {}).get("html")
  if own:   # the Grouping component's own page (k curve, maps) inside its artifact
    path = os.path.join(g["uri"], own)
    out.append(f'<p>Grouping report: <a href="{_e(pathlib.Path(path).absolute().as_uri())}">'
               f"{_e(path)}</a></p>")
  return "".join(out)


def _group_effects_section(c: ReportContent, caterpillar_png: Optional[str]) -> str:
  if not c.group_effects:
    return ("<p>No group-effects table for this model (one trained before intervals "
            "existed).</p>")
  out = [f"<p>One row per group, label units (shrinkage 0 = fully pooled, 1 = its own "
         f"estimate; interval_sd is the served interval's sd). File: "
         f"<code>{_e(c.group_effects_csv)}</code> (and .json beside it).</p>"]
  if caterpillar_png:
    out.append(f'<img src="{_e(caterpillar_png)}" style="max-width:100%" '
               'alt="intercept shift per group, +- 2 sd, sorted">')
  else:
    out.append("<p>No caterpillar plot: this variant has no per-group shifts.</p>")
  if len(c.group_effects) > MAX_TABLE_GROUPS:
    out.append(f"<p>The {MAX_TABLE_GROUPS} largest of {len(c.group_effects)} groups; all are in "
               "the CSV.</p>")
  out.append(group_effects.html_table(c.group_effects, MAX_TABLE_GROUPS))
  return "".join(out)


def render(c: ReportContent, png_name: str, caterpillar_png: Optional[str] = None) -> str:
  verdict = {True: ("ok", "BLESSED"), False: ("bad", "NOT blessed"),
             None: ("bad", "no blessing")}[c.blessed]
  pushed = (f"pushed to <code>{_e(c.pushed_path)}</code>" if c.pushed_path
            else "not pushed")
  failures = ("<ul class=failures>" + "".join(f"<li>{_e(f)}</li>" for f in c.failures) + "</ul>"
              if c.failures else "<p>No threshold failed.</p>")
  extra = "".join(
      f"<h3>by {_e(col)}</h3>" + _table([col] + _metric_headers(c.metric_names),
                                        [_slice_row(r) for r in rows])
      for col, rows in c.extra_slices.items())
  notebook = (
      "import tensorflow_model_analysis as tfma\n"
      f"result = tfma.load_eval_result({json.dumps(c.evaluation_uri)})\n"
      "tfma.view.render_slicing_metrics(result, slicing_column='group_id')")
  return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{_e(c.title)} evaluation</title>
<style>{_CSS}</style></head><body>
<h1>{_e(c.title)}: model evaluation</h1>
<p><span class="verdict {verdict[0]}">{verdict[1]}</span> &nbsp; {pushed}</p>
<p>candidate: <code>{_e(c.candidate_model_uri or '-')}</code><br>
baseline: <code>{_e(c.baseline_model_uri or 'none (first run)')}</code><br>
evaluation: <code>{_e(c.evaluation_uri or '-')}</code></p>
<h2>Failed thresholds</h2>{failures}
<h2>Blessing rules</h2><ul>{''.join(f'<li>{_e(r)}</li>' for r in c.rules)}</ul>
<h2>RMSE per group</h2><img src="{_e(png_name)}" style="max-width:100%"
alt="RMSE per group, candidate vs baseline">
<p>Every group: <a href="{GROUPS_CSV}">{GROUPS_CSV}</a></p>
<h2>Per group</h2>{_group_table(c)}
<h2>Other slices</h2>{extra or '<p>none configured</p>'}
<h2>Group effects</h2>{_group_effects_section(c, caterpillar_png)}
<h2>Grouping</h2>{_grouping_section(c)}
<h2>In a notebook</h2><pre>{_e(notebook)}</pre>
</body></html>
"""
