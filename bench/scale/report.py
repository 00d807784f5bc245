"""scale.md + scale.png from the accumulated scale.json: ratios to the stock pipeline at equal
rows, per-component time and peak RSS, growth from the smallest to the largest size."""
from __future__ import annotations

import os
from typing import Any, Dict, List

ORDER = ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ImportSchemaGen", "ExampleValidator",
         "Grouping", "GroupedTransform", "Transform", "GroupedTrainer", "Trainer",
         "GroupedEvaluator", "Evaluator", "Pusher", "Report"]


def _order(names) -> List[str]:
  return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def _cells(results: Dict[str, Any], pipeline: str) -> List[Dict[str, Any]]:
  return sorted((c for c in results["cells"].values() if c["pipeline"] == pipeline),
                key=lambda c: (c["rows"], c["dataset"]))


def _taxi_at(results: Dict[str, Any], rows: int):
  return next((c for c in _cells(results, "taxi") if c["rows"] == rows), None)


def _component_table(cells: List[Dict[str, Any]], title: str) -> List[str]:
  if not cells:
    return []
  names = _order({n for c in cells for n in c["components"]})
  head = " | ".join(f"{c['dataset']} {c['rows']:,}: s / MB" for c in cells)
  lines = [f"### {title}", "", f"| component | {head} |",
           "|---|" + "---:|" * len(cells)]
  for n in names:
    vals = []
    for c in cells:
      x = c["components"].get(n)
      vals.append(f"{x['seconds']:.0f} / {x['peak_rss_mb']:.0f}" if x else "-")
    lines.append(f"| {n} | " + " | ".join(vals) + " |")
  if len(cells) > 1:
    lo, hi = cells[0], cells[-1]
    lines += ["", f"Growth {lo['rows']:,} -> {hi['rows']:,} rows "
              f"({hi['rows'] / lo['rows']:.0f}x): time / peak RSS"]
    for n in names:
      a, b = lo["components"].get(n), hi["components"].get(n)
      if a and b and a["seconds"] > 0 and a["peak_rss_mb"] > 0:
        lines.append(f"- {n}: {b['seconds'] / a['seconds']:.1f}x / "
                     f"{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x")
  return lines + [""]


def _plot(results: Dict[str, Any], path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for pipeline, style in (("ours", "o-"), ("taxi", "s--")):
    cells = [c for c in _cells(results, pipeline) if c["dataset"] == "synthetic"]
    if not cells:
      continue
    rows = [c["rows"] for c in cells]
    axes[0].plot(rows, [c["wall_s"] for c in cells], style, label=pipeline)
    axes[1].plot(rows, [c["peak_rss_mb"] / 1024 for c in cells], style, label=pipeline)
  for ax, ylabel in zip(axes, ("wall time (s)", "peak RSS of the process tree (GiB)")):
    ax.set_xscale("log")
    ax.set_xlabel("rows")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
  fig.suptitle("Grouped-regression pipeline vs stock chicago-taxi (synthetic rows)")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def write(results: Dict[str, Any], out_dir: str) -> str:
  ours = _cells(results, "ours")
  taxi = _cells(results, "taxi")
  sessions = sorted({c["session"] for c in results["cells"].values()})
  lines = ["# Scale: whole pipeline vs the stock chicago-taxi pipeline at equal row counts", "",
           "Each cell: its own process from scratch (fresh MLMD, no cache), LocalDagRunner, the",
           "same Beam args for both pipelines. Per-component time comes from MLMD; peak RSS is",
           "the sum over the child's process tree, sampled every 0.2 s, while that component ran",
           "(LocalDagRunner runs one component at a time, in one process: memory an earlier",
           "component left allocated counts in later ones). `make bench-scale`; cells from",
           f"different sessions are not side by side. Sessions: {', '.join(sessions)}.", "",
           "| dataset | rows | ours wall (s) | taxi wall (s) | ratio ours/taxi | ours peak RSS (MB) "
           "| taxi peak RSS (MB) | session (ours / taxi) | load (ours / taxi) |",
           "|---|---:|---:|---:|---:|---:|---:|---|---|"]
  for c in ours:
    t = _taxi_at(results, c["rows"])
    tw, tr, ts, tl = ((f"{t['wall_s']:.0f}", f"{t['peak_rss_mb']:.0f}", t["session"],
                       f"{t['load']:.1f}") if t else ("-", "-", "-", "-"))
    ratio = f"**{c['wall_s'] / t['wall_s']:.2f}x**" if t else "-"
    lines.append(f"| {c['dataset']} | {c['rows']:,} | {c['wall_s']:.0f} | {tw} | {ratio} | "
                 f"{c['peak_rss_mb']:.0f} | {tr} | {c['session']} / {ts} | "
                 f"{c['load']:.1f} / {tl} |")
  lines.append("")
  lines += _component_table([c for c in ours if c["dataset"] == "synthetic"],
                            "Our pipeline per component (synthetic): seconds / peak RSS MB")
  lines += _component_table([c for c in ours if c["dataset"] != "synthetic"],
                            "Our pipeline per component (flights_full): seconds / peak RSS MB")
  lines += _component_table([c for c in taxi if c["dataset"] == "synthetic"],
                            "Stock taxi pipeline per component: seconds / peak RSS MB")
  os.makedirs(out_dir, exist_ok=True)
  try:
    _plot(results, os.path.join(out_dir, "scale.png"))
    lines += ["![time and memory against rows](scale.png)", ""]
  except ImportError:
    pass
  path = os.path.join(out_dir, "scale.md")
  with open(path, "w") as f:
    f.write("\n".join(lines))
  return path
