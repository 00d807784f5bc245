"""From the train scan and the component config to a fitted Grouping.

Decides what each configured feature is from its tf.Example type in train: int/float features
are numeric; a bytes (string) feature in K-Means mode is handled by `categorical`:
  error   - stop with a message naming the feature and a value (default),
  onehot  - one-hot columns for its categories with >= min_count train rows,
  exclude - leave it out and say so in the summary and report.
"""
from __future__ import annotations

from typing import Any, Dict

from components.grouping import example_io, fitting, scan

CATEGORICAL_POLICIES = ("error", "onehot", "exclude")


def _require_present(result: scan.ScanResult, f: str) -> None:
  if result.kinds.get(f) is None:
    raise fitting.GroupingError(
        f"grouping feature '{f}' has no value in any of the {result.rows} train examples "
        "(absent or empty in all of them): check grouping.features / grouping.column")


def _counts(result: scan.ScanResult, f: str) -> Dict[str, int]:
  counts = result.categories.get(f, {})
  if counts is None:
    raise fitting.GroupingError(
        f"grouping column '{f}' has more than {scan.MAX_DISTINCT} distinct values in train: "
        "too many to use as categories")
  return counts


def fit(result: scan.ScanResult, cfg: Dict[str, Any]) -> fitting.Grouping:
  if result.rows == 0:
    raise fitting.GroupingError("the train split has no examples: nothing to fit groups on")
  min_count = int(cfg.get("min_count", 1))
  if cfg["mode"] == fitting.APRIORI:
    column = cfg["features"][0]
    _require_present(result, column)
    return fitting.fit_apriori(_counts(result, column), column, min_count=min_count,
                               missing=result.missing[column])

  policy = cfg.get("categorical", "error")
  if policy not in CATEGORICAL_POLICIES:
    raise fitting.GroupingError(f"grouping.categorical '{policy}' not in {CATEGORICAL_POLICIES}")
  used, onehot, excluded = [], {}, []
  for f in cfg["features"]:
    _require_present(result, f)
    if result.kinds[f] != example_io.BYTES:
      used.append(f)
      continue
    counts = _counts(result, f)
    if policy == "error":
      example = max(counts, key=counts.get) if counts else ""
      raise fitting.GroupingError(
          f"grouping feature '{f}' is not numeric (train value {example!r}, {len(counts)} "
          "distinct values); K-Means needs numbers: set grouping.categorical to 'onehot' or "
          "'exclude', or group a priori on it (grouping.mode: apriori, grouping.column)")
    if policy == "exclude":
      excluded.append(f)
      continue
    vocab = fitting.onehot_vocabulary(counts, min_count)
    if not vocab:
      raise fitting.GroupingError(f"grouping feature '{f}': no category reaches "
                                  f"grouping.min_count={min_count} for one-hot encoding")
    onehot[f] = vocab
  if not used and not onehot:
    raise fitting.GroupingError(f"every grouping feature {excluded} is categorical and "
                                "grouping.categorical is 'exclude': nothing left to cluster on")
  g = fitting.fit_kmeans(
      result.sample, used, cfg["k_values"], seed=cfg["seed"],
      min_group_share=cfg["min_group_share"], silhouette_sample=cfg["silhouette_sample"],
      onehot=onehot, n_init=int(cfg.get("n_init", 4)),
      tie_tolerance=float(cfg.get("tie_tolerance", 1e-3)), excluded=excluded)
  if excluded:
    g.notes.append(f"categorical feature(s) {excluded} excluded from K-Means "
                   "(grouping.categorical: exclude)")
  return g
