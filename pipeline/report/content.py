"""Everything the evaluation report shows, gathered from a RunSummary and the artifacts it
points at (evaluation dir, grouping artifact). Plain data, so the HTML and the chart only
format it and the tests can check it without parsing HTML."""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Dict, List, Optional

import numpy as np
from tensorflow_model_analysis.writers import eval_config_writer

from components.grouping import store as grouping_store
from models.grouped_regression import features as fk
from models.grouped_regression import group_effects as effects_lib
from pipeline import eval_results
from pipeline import run_summary
from pipeline.eval_config import METRIC_NAMES, RMSE
from pipeline.run_summary import RunSummary

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SliceRow:
  """One slice (a group, an extra-slice value or overall): candidate and baseline metrics."""
  label: str
  key: eval_results.SliceKey
  candidate: Dict[str, float]
  baseline: Dict[str, float]
  gated: Optional[bool] = None          # groups only: does a threshold apply?
  failed: List[str] = dataclasses.field(default_factory=list)  # failure descriptions
  train_rows: Optional[int] = None

  @property
  def rmse_change(self) -> Optional[float]:
    c, b = self.candidate.get(RMSE), self.baseline.get(RMSE)
    return None if c is None or not b else (c - b) / b


@dataclasses.dataclass
class ReportContent:
  title: str
  blessed: Optional[bool]
  pushed_path: Optional[str]
  evaluation_uri: Optional[str]
  candidate_model_uri: Optional[str]
  baseline_model_uri: Optional[str]
  rules: List[str]
  failures: List[str]
  overall: SliceRow
  groups: List[SliceRow]
  extra_slices: Dict[str, List[SliceRow]]
  grouping: Dict[str, Any]
  metric_names: Dict[str, str] = dataclasses.field(default_factory=lambda: dict(METRIC_NAMES))
  # the Trainer's group-effects table of the evaluated model (models/.../group_effects.py)
  group_effects: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
  group_effects_csv: Optional[str] = None


def _split_models(models: Dict[str, Dict[str, float]]):
  return (models.get(eval_results.candidate_name(models), {}), models.get("baseline", {}))


def _rules(s: RunSummary) -> List[str]:
  """The thresholds the Evaluator applied, read back from the eval_config it wrote."""
  if not s.evaluation_uri:
    return []
  config = eval_config_writer.load_eval_run(s.evaluation_uri)[0]
  out = []
  for spec in config.metrics_specs:
    for m in spec.metrics:
      for pst in m.per_slice_thresholds:
        if not any(not sl.feature_keys and not sl.feature_values for sl in pst.slicing_specs):
          continue  # per-group thresholds are described from the gate decision below
        t = pst.threshold
        if t.HasField("value_threshold") and t.value_threshold.HasField("upper_bound"):
          out.append(f"overall {m.class_name} <= {t.value_threshold.upper_bound.value:g}")
        if t.HasField("value_threshold") and t.value_threshold.HasField("lower_bound"):
          out.append(f"overall {m.class_name} >= {t.value_threshold.lower_bound.value:g}")
        if t.HasField("change_threshold"):
          out.append(f"overall {m.class_name} may worsen by at most "
                     f"{100 * t.change_threshold.relative.value:g}% vs the baseline")
  if s.baseline_model_uri is None:
    out.append("no blessed baseline yet: change thresholds are dropped (first run), the "
               "absolute bound alone decides")
  gate = s.gate
  if gate:
    split = "+".join(gate.get("splits", ["test"]))
    out.append(f"every metric is computed on the {split} split (never used for training or "
               "model choices)")
    out.append(f"each group with >= {gate['min_examples']} {split} rows: RMSE may worsen by at most "
               f"{100 * gate['relative_tolerance']:g}% vs the baseline "
               f"(gated: {gate['gated'] or 'none'}; reported only: {gate['not_gated'] or 'none'})")
  return out


def _grouping(uri: Optional[str]) -> Dict[str, Any]:
  """Grouping summary plus centroids in raw feature units (K-Means)."""
  if not uri:
    return {}
  summary = grouping_store.load_summary(uri)
  out = {"uri": uri, "summary": summary, "centroids": None, "columns": None}
  try:
    g = grouping_store.load(uri)
  except (FileNotFoundError, TypeError, ValueError) as e:  # an older/newer artifact format
    log.warning("report: grouping artifact %s not readable as a Grouping: %s", uri, e)
    return out
  if getattr(g, "centroids", None) is not None:
    centroids = np.asarray(g.centroids, dtype=np.float64)
    out["columns"] = list(getattr(g, "columns", None) or g.features)
    out["centroids"] = (centroids * np.asarray(g.scale) + np.asarray(g.mean)).tolist()
  if getattr(g, "vocabulary", None):
    out["vocabulary"] = list(g.vocabulary)
  return out


def build(s: RunSummary, title: str) -> ReportContent:
  failures_by_slice: Dict[eval_results.SliceKey, List[str]] = {}
  failure_text = []
  for f in s.failures:
    base = s.metrics.get(f.slice, {}).get("baseline", {}).get(f.metric)
    text = f.describe(base)
    failure_text.append(text)
    failures_by_slice.setdefault(f.slice, []).append(text)

  def row(key, label) -> SliceRow:
    cand, base = _split_models(s.metrics.get(key, {}))
    return SliceRow(label=label, key=key, candidate=cand, baseline=base,
                    failed=failures_by_slice.get(key, []))

  gate = s.gate or {}
  gated = set(gate.get("gated", []))
  grouping = _grouping(s.grouping_uri)
  num_groups = grouping.get("summary", {}).get("num_groups", 0)
  train_counts = grouping.get("summary", {}).get("counts", {}).get("train", [])
  groups = []
  for gid in sorted(set(s.groups) | set(range(num_groups))):  # groups without eval rows too
    r = row(((fk.GROUP_KEY, str(gid)),), f"group {gid}")
    r.gated = gid in gated if gate else None
    r.train_rows = s.groups.get(gid, {}).get(
        "train_rows", train_counts[gid] if gid < len(train_counts) else None)
    groups.append(r)
  effects_csv = run_summary.group_effects_csv(s)
  effects = effects_lib.read(os.path.dirname(effects_csv)) if effects_csv else []
  extra: Dict[str, List[SliceRow]] = {}
  for key in sorted(k for k in s.metrics if len(k) == 1 and k[0][0] != fk.GROUP_KEY):
    extra.setdefault(key[0][0], []).append(row(key, key[0][1]))
  return ReportContent(
      title=title, blessed=s.blessed, pushed_path=s.pushed_path if s.pushed else None,
      evaluation_uri=s.evaluation_uri, candidate_model_uri=s.candidate_model_uri,
      baseline_model_uri=s.baseline_model_uri, rules=_rules(s), failures=failure_text,
      overall=row((), "overall"), groups=groups, extra_slices=extra,
      grouping=grouping, group_effects=effects, group_effects_csv=effects_csv)
