"""scale.md + scale.png from the accumulated scale.json: ratios to the stock pipeline at equal
rows, per-component time and peak RSS, growth from the smallest to the largest size."""
from __future__ import annotations

import os
from typing import Any, Dict, List

ORDER = ["CsvExampleGen", "StatisticsGen", "SchemaGen", "LabelRangeSchemaGen",
         "ImportSchemaGen", "ExampleValidator", "Grouping", "GroupedTransform", "Transform",
         "GroupedTrainer", "Trainer", "Resolver", "GroupedEvaluator", "Evaluator", "GuardedPusher",
         "Pusher", "Report"]
OTHER = "(outside components)"
TITLES = {
    "ours": "Our pipeline per component (synthetic): seconds / peak RSS MB",
    "ours-flights": "Our pipeline per component (flights_full): seconds / peak RSS MB",
    "taxi": "Stock taxi pipeline per component (taxi CSV replicated): seconds / peak RSS MB",
}


def _order(names) -> List[str]:
  return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def _cells(results: Dict[str, Any], pipeline: str) -> List[Dict[str, Any]]:
  return sorted((c for c in results["cells"].values() if c["pipeline"] == pipeline),
                key=lambda c: (c["rows"], c["dataset"]))


def _taxi_at(results: Dict[str, Any], rows: int):
  return next((c for c in _cells(results, "taxi") if c["rows"] == rows), None)


def _label(cell: Dict[str, Any]) -> str:
  """Taxi cells are the taxi CSV replicated, whichever size class (synthetic/flights) they match."""
  return "taxi CSV" if cell["pipeline"] == "taxi" else cell["dataset"]


def _load(cell: Dict[str, Any]) -> str:
  return (f"{cell['load_start']:.1f}-{cell['load']:.1f}" if "load_start" in cell
          else f"{cell['load']:.1f}")


def _component_table(cells: List[Dict[str, Any]], title: str) -> List[str]:
  if not cells:
    return []
  names = _order({n for c in cells for n in c["components"]})
  head = " | ".join(f"{_label(c)} {c['rows']:,}: s / MB" for c in cells)
  lines = [f"### {title}", "", f"| component | {head} |",
           "|---|" + "---:|" * len(cells)]
  for n in names:
    vals = []
    for c in cells:
      x = c["components"].get(n)
      vals.append(f"{x['seconds']:.0f} / {x['peak_rss_mb']:.0f}" if x else "-")
    lines.append(f"| {n} | " + " | ".join(vals) + " |")
  # Process start, imports, pipeline compilation and the runner's own work between components.
  rest = [c["wall_s"] - sum(x["seconds"] for x in c["components"].values()) for c in cells]
  lines.append(f"| {OTHER} | " + " | ".join(f"{r:.0f} s" for r in rest) + " |")
  lines.append("| **whole run** | " + " | ".join(
      f"**{c['wall_s']:.0f} / {c['peak_rss_mb']:.0f}**" for c in cells) + " |")
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
  series = (("ours (synthetic)", "ours", "synthetic", "o-"),
            ("ours (flights_full)", "ours", "flights", "D"),
            ("stock taxi", "taxi", None, "s--"))
  for label, pipeline, dataset, style in series:
    cells = [c for c in _cells(results, pipeline) if dataset in (None, c["dataset"])]
    if not cells:
      continue
    rows = [c["rows"] for c in cells]
    axes[0].plot(rows, [c["wall_s"] for c in cells], style, label=label)
    axes[1].plot(rows, [c["peak_rss_mb"] / 1024 for c in cells], style, label=label)
  for ax, ylabel in zip(axes, ("wall time (s)", "peak RSS of the process tree (GiB)")):
    ax.set_xscale("log")
    ax.set_xlabel("rows")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
  fig.suptitle("Grouped-regression pipeline vs stock chicago-taxi at equal rows")
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
           "| taxi peak RSS (MB) | session (ours / taxi) | 1-min load, start-end (ours / taxi) |",
           "|---|---:|---:|---:|---:|---:|---:|---|---|"]
  for c in ours:
    t = _taxi_at(results, c["rows"])
    tw, tr, ts, tl = ((f"{t['wall_s']:.0f}", f"{t['peak_rss_mb']:.0f}", t["session"],
                       _load(t)) if t else ("-", "-", "-", "-"))
    ratio = f"**{c['wall_s'] / t['wall_s']:.2f}x**" if t else "-"
    lines.append(f"| {c['dataset']} | {c['rows']:,} | {c['wall_s']:.0f} | {tw} | {ratio} | "
                 f"{c['peak_rss_mb']:.0f} | {tr} | {c['session']} / {ts} | "
                 f"{_load(c)} / {tl} |")
  lines.append("")
  lines += _component_table([c for c in ours if c["dataset"] == "synthetic"], TITLES["ours"])
  lines += _component_table([c for c in ours if c["dataset"] != "synthetic"],
                            TITLES["ours-flights"])
  lines += _component_table(taxi, TITLES["taxi"])
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
