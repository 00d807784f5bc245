"""summary.json: what the component saw and did, for people, the report and downstream code.

`counts[split]` is the row count per group id in every split (the evaluation gate reads
counts['test']; pipeline/run_summary.py reads counts['train']).
"""
from __future__ import annotations

from typing import Any, Dict, List

from components.grouping import fitting, scan, store

SUMMARY_VERSION = 2


def build(g: fitting.Grouping, result: scan.ScanResult, stats: Dict[str, Dict[str, Any]],
          cfg: Dict[str, Any]) -> Dict[str, Any]:
  """stats: {split: {"rows", "counts", "missing"}} from the counting pass."""
  counts = {s: list(st["counts"]) for s, st in stats.items()}
  rows = {s: int(st["rows"]) for s, st in stats.items()}
  shares = {s: [c / rows[s] if rows[s] else 0.0 for c in counts[s]] for s in counts}
  missing = {s: {f: int(n) for f, n in st["missing"].items()} for s, st in stats.items()}
  empty = {s: [i for i, c in enumerate(counts[s]) if c == 0] for s in counts}
  warnings: List[str] = list(g.notes)
  for s in sorted(rows):
    if rows[s] == 0:
      warnings.append(f"split '{s}' has no examples")
    elif empty[s]:
      ids = empty[s] if len(empty[s]) <= 10 else f"{empty[s][:10]} ... ({len(empty[s])} in all)"
      warnings.append(f"split '{s}': group(s) {ids} have no rows")  # bounded: 1000s of groups
    for f, n in missing[s].items():
      if n:
        how = (f"imputed with the train mean {_impute(g, f):.6g}" if f in g.numeric_features
               else "one-hot all zeros" if g.mode == fitting.KMEANS
               else f"fallback group {g.fallback_group}")
        warnings.append(f"split '{s}': {n} row(s) ({100 * n / rows[s]:.2f}%) miss '{f}' - {how}")
  out = {
      "format_version": SUMMARY_VERSION,
      "mode": g.mode, "features": g.features, "excluded_features": g.excluded,
      "group_feature": cfg["group_feature"], "num_groups": g.num_groups, "seed": g.seed,
      "train_rows": result.rows, "fit_rows": g.fit_rows if g.mode == fitting.KMEANS else
      result.rows, "sample_size": cfg["sample_size"],
      "k_candidates": [int(k) for k in cfg["k_values"]],
      "min_group_share": cfg["min_group_share"],
      "selection": [vars(c) for c in g.selection], "inertia": g.inertia,
      "silhouette": g.silhouette,
      "counts": counts, "rows": rows, "shares": shares, "empty_groups": empty,
      "missing": missing,
      "imputed_with": {f: _impute(g, f) for f in g.numeric_features},
      "warnings": warnings,
      "report": {"html": store.REPORT_HTML, "png": store.REPORT_PNG},
  }
  if g.mode == fitting.APRIORI:
    out["fallback_group"] = g.fallback_group
    out["vocabulary"] = g.vocabulary
    out["min_count"] = cfg["min_count"]
  return out


def _impute(g: fitting.Grouping, f: str) -> float:
  return float(g.impute[g.columns.index(f)])
