"""The human report of a grouping artifact: report.png (three panels) and report.html.

Panels: rows per group for each split; the k-selection curve (silhouette and inertia per k,
infeasible k marked, chosen k highlighted); a 2-D map of the fit sample coloured by group -
longitude/latitude when those are grouping features, else the first two principal components
of the standardised columns. The HTML embeds the PNG, so it is one self-contained file.
"""
from __future__ import annotations

import base64
import html
import io
import os
import threading
from typing import Any, Dict, Mapping, Optional

import numpy as np
import tensorflow as tf

from components.grouping import fitting, store

MAP_POINTS = 5000
_LON = ("longitude", "lon", "lng", "long")
_LAT = ("latitude", "lat")


def _find(features, names) -> Optional[str]:
  for f in features:
    low = f.lower()
    if low in names or any(low.endswith("_" + n) for n in names):
      return f
  return None


def map_axes(g: fitting.Grouping, sample: Mapping[str, np.ndarray]):
  """(x, y, x label, y label, title) of the 2-D map, or None when there is nothing to map."""
  if g.mode != fitting.KMEANS:
    return None
  rows = {f: np.asarray(v)[:MAP_POINTS] for f, v in sample.items()}
  lon, lat = _find(g.numeric_features, _LON), _find(g.numeric_features, _LAT)
  if lon and lat:
    x, y = fitting.numeric_column(rows, lon), fitting.numeric_column(rows, lat)
    return x, y, lon, lat, "groups on the map", rows
  z = fitting.standardise(fitting.encode(g, rows), g.impute, g.mean, g.scale)
  if z.shape[1] == 1:
    jitter = np.random.default_rng(0).uniform(-0.4, 0.4, len(z))
    return z[:, 0], jitter, f"{g.columns[0]} (standardised)", "jitter", "groups", rows
  centred = z - z.mean(axis=0)
  _, sv, vt = np.linalg.svd(centred, full_matrices=False)
  var = sv ** 2 / max(float((sv ** 2).sum()), 1e-300)
  pcs = centred @ vt[:2].T
  return (pcs[:, 0], pcs[:, 1], f"PC1 ({100 * var[0]:.0f}% of variance)",
          f"PC2 ({100 * var[1]:.0f}% of variance)", "groups, principal components", rows)


def _import_pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def preload() -> threading.Thread:
  """Starts importing matplotlib (about a second of CPU) in a thread, so it overlaps other work
  instead of opening the report stage; plot() waits for it through the import lock."""
  thread = threading.Thread(target=_import_pyplot, name="grouping-report-preload", daemon=True)
  thread.start()
  return thread


def plot(g: fitting.Grouping, summary: Dict[str, Any], sample: Mapping[str, np.ndarray]) -> bytes:
  plt = _import_pyplot()

  fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
  _sizes(axes[0], g, summary)
  _k_curve(axes[1], g)
  _map(axes[2], g, sample)
  fig.subplots_adjust(left=0.05, right=0.97, bottom=0.13, top=0.92, wspace=0.32)
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=90)
  plt.close(fig)
  return buf.getvalue()


def _sizes(ax, g, summary) -> None:
  splits = sorted(summary["counts"], key=lambda s: (s != "train", s))
  ids = np.arange(g.num_groups)
  width = 0.8 / max(len(splits), 1)
  for i, s in enumerate(splits):
    ax.bar(ids + i * width - 0.4 + width / 2, summary["counts"][s], width, label=s)
  ax.set_xticks(ids)
  if g.mode == fitting.APRIORI:
    ax.set_xticklabels([_group_label(g, i, short=True) for i in ids], rotation=45, ha="right",
                       fontsize=7)
  ax.set_xlabel("group")
  ax.set_ylabel("rows")
  ax.set_title("rows per group")
  ax.legend()


def _k_curve(ax, g) -> None:
  sel = g.selection
  if g.mode != fitting.KMEANS or len(sel) < 2:
    what = ("a-priori groups: no k to choose" if g.mode != fitting.KMEANS
            else f"k fixed at {g.num_groups}: no selection curve")
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return
  ks = [c.k for c in sel]
  sil = [np.nan if c.silhouette is None else c.silhouette for c in sel]
  ax.plot(ks, sil, "o-", color="tab:blue", label="silhouette")
  bad = [c for c in sel if not c.feasible]
  if bad:
    ax.plot([c.k for c in bad], [np.nan if c.silhouette is None else c.silhouette for c in bad],
            "x", color="tab:red", markersize=10, label="a group below min share")
  ax.axvline(g.num_groups, color="tab:green", linestyle="--", label=f"chosen k={g.num_groups}")
  ax.set_xlabel("k")
  ax.set_ylabel("silhouette")
  ax.set_xticks(ks)
  twin = ax.twinx()
  twin.plot(ks, [c.inertia for c in sel], "s:", color="tab:gray", label="inertia")
  twin.set_ylabel("inertia (fit sample)")
  ax.set_title("choosing k")
  handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
  ax.legend(handles=handles, loc="best", fontsize=8)


def _map(ax, g, sample) -> None:
  axes = map_axes(g, sample)
  if axes is None:
    ax.text(0.5, 0.5, "a-priori groups: no 2-D map", ha="center", va="center",
            transform=ax.transAxes)
    ax.set_axis_off()
    return
  x, y, xl, yl, title, rows = axes
  ids = fitting.assign(g, rows)
  ok = np.isfinite(x) & np.isfinite(y)   # rows missing a coordinate are assigned, not drawn
  x, y, ids = x[ok], y[ok], ids[ok]
  ax.scatter(x, y, c=ids, cmap="tab20" if g.num_groups > 10 else "tab10", s=5,
                  vmin=-0.5, vmax=max(g.num_groups, 10 if g.num_groups <= 10 else 20) - 0.5)
  for i in range(g.num_groups):
    sel = ids == i
    if sel.any():
      ax.annotate(str(i), (np.median(x[sel]), np.median(y[sel])), fontsize=10,
                  fontweight="bold", ha="center", va="center",
                  bbox=dict(boxstyle="round,pad=0.15", fc="white", alpha=0.7))
  ax.set_xlabel(xl)
  ax.set_ylabel(yl)
  ax.set_title(f"{title} ({len(x)} sample rows)", fontsize=10)


def _group_label(g, i: int, short: bool = False) -> str:
  if g.mode == fitting.KMEANS:
    return str(i)
  if i == g.fallback_group:
    return f"{i}: (fallback)" if not short else f"{i} fallback"
  name = g.vocabulary[i]
  return f"{i}: {name}" if not short else f"{i} {name[:12]}"


def centroids_raw(g: fitting.Grouping) -> np.ndarray:
  """Centroids in raw units (numeric columns) and category shares (one-hot columns)."""
  return g.centroids * g.scale + g.mean


def _table(header, rows) -> str:
  head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
  body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                 for r in rows)
  return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v, spec=".4g") -> str:
  return "-" if v is None else format(v, spec)


def render_html(g: fitting.Grouping, summary: Dict[str, Any], png: bytes) -> str:
  splits = sorted(summary["counts"], key=lambda s: (s != "train", s))
  parts = [f"<h1>Grouping: {html.escape(g.mode)} on {html.escape(', '.join(g.features))}</h1>"]
  facts = [("groups", g.num_groups), ("train rows", summary["train_rows"]),
           ("rows used to fit", summary["fit_rows"]), ("seed", g.seed)]
  if g.mode == fitting.KMEANS:
    facts += [("inertia (fit rows, standardised)", _fmt(g.inertia)),
              ("silhouette", _fmt(g.silhouette)),
              ("k candidates", summary["k_candidates"]),
              ("min group share", summary["min_group_share"])]
    if g.excluded:
      facts.append(("excluded categorical features", ", ".join(g.excluded)))
  else:
    facts += [("min count per category", summary.get("min_count")),
              ("fallback group", f"{g.fallback_group} (rare, unseen and missing values)")]
  parts.append(_table(["", ""], facts))
  if summary["warnings"]:
    items = "".join(f"<li>{html.escape(w)}</li>" for w in summary["warnings"])
    parts.append(f"<h2>Notes</h2><ul>{items}</ul>")
  b64 = base64.b64encode(png).decode("ascii")
  parts.append(f'<img alt="grouping report" src="data:image/png;base64,{b64}">')
  header = ["group"] + [f"{s} rows" for s in splits] + [f"{s} share" for s in splits]
  if g.mode == fitting.KMEANS:
    header += [f"centroid {c}" for c in g.columns]
    cents = centroids_raw(g)
  rows = []
  for i in range(g.num_groups):
    r = [_group_label(g, i)] + [summary["counts"][s][i] for s in splits]
    r += [f"{100 * summary['shares'][s][i]:.1f}%" for s in splits]
    if g.mode == fitting.KMEANS:
      r += [f"{v:.5g}" for v in cents[i]]
    rows.append(r)
  parts.append("<h2>Groups</h2>" + _table(header, rows))
  if len(g.selection) > 1:
    sel_rows = [(c.k, _fmt(c.inertia, ".6g"), _fmt(c.silhouette), f"{100 * c.min_share:.2f}%",
                 "yes" if c.feasible else "no", "chosen" if c.k == g.num_groups else "")
                for c in g.selection]
    parts.append("<h2>Choosing k</h2><p>Best silhouette among k whose smallest group holds at "
                 "least the minimum share; within the tie tolerance the smaller k wins.</p>"
                 + _table(["k", "inertia", "silhouette", "smallest group", "meets min share",
                           ""], sel_rows))
  miss_rows = [(s, f, n) for s in splits for f, n in summary["missing"][s].items()]
  if miss_rows:
    parts.append("<h2>Missing grouping values</h2>" + _table(["split", "feature", "rows"],
                                                              miss_rows))
  style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;"
           "margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
           "img{max-width:100%}")
  return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Grouping report</title>"
          f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def write(uri: str, g: fitting.Grouping, summary: Dict[str, Any],
          sample: Mapping[str, np.ndarray]) -> str:
  """Writes report.png and report.html into the artifact directory; returns the HTML path."""
  png = plot(g, summary, sample)
  tf.io.gfile.makedirs(uri)
  with tf.io.gfile.GFile(os.path.join(uri, store.REPORT_PNG), "wb") as f:
    f.write(png)
  path = os.path.join(uri, store.REPORT_HTML)
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(render_html(g, summary, png))
  return path
