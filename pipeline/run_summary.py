"""What a finished run produced, read back from MLMD: evaluation, blessing, pushed model."""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from tfx.utils import path_utils

from components import interval_metrics
from components.grouping import store as grouping_store
from models.grouped_regression import features as fk
from models.grouped_regression import group_effects
from models.grouped_regression import trainer
from pipeline import eval_results

SliceMetrics = Dict[eval_results.SliceKey, Dict[str, Dict[str, float]]]


@dataclasses.dataclass
class RunSummary:
  evaluation_uri: Optional[str]
  blessed: Optional[bool]
  pushed: bool
  pushed_path: Optional[str]
  grouping_uri: Optional[str]
  groups: Dict[int, Dict[str, Optional[float]]]
  overall: Dict[str, Dict[str, float]]
  # the rest feeds the report (pipeline/report)
  evaluation_id: Optional[int] = None
  candidate_model_uri: Optional[str] = None
  baseline_model_uri: Optional[str] = None       # None: first run, judged on absolute rules
  metrics: SliceMetrics = dataclasses.field(default_factory=dict)
  unchanged_version: Optional[str] = None        # blessed but identical to this pushed version
  failures: List[eval_results.Failure] = dataclasses.field(default_factory=list)
  gate: Optional[Dict[str, Any]] = None            # gated / reported-only groups
  report_path: Optional[str] = None                # set once the report is written
  model_choice: Optional[Dict[str, Any]] = None    # #13: variant kept + candidates' eval RMSE


def _latest(mlmd, type_name: str):
  arts = [a for a in mlmd.get_artifacts_by_type(type_name) if a.uri]
  return max(arts, key=lambda a: a.id) if arts else None


def _prop(artifact, name):
  if artifact is None or name not in artifact.custom_properties:
    return None
  v = artifact.custom_properties[name]
  return v.int_value if v.HasField("int_value") else v.string_value


def summarize(connection_config) -> RunSummary:
  mlmd = metadata_store.MetadataStore(connection_config)
  evaluation = _latest(mlmd, "ModelEvaluation")
  blessing = _latest(mlmd, "ModelBlessing")
  pushed = _latest(mlmd, "PushedModel")
  grouping = _latest(mlmd, "grouped_regression.GroupingModel")
  metrics = eval_results.load_slice_metrics(evaluation.uri) if evaluation else {}
  groups = eval_results.group_rows(metrics, fk.GROUP_KEY)
  if grouping is not None:
    counts = grouping_store.load_summary(grouping.uri)["counts"].get("train", [])
    for gid, row in groups.items():
      row["train_rows"] = counts[gid] if gid < len(counts) else None
  blessed = _prop(blessing, "blessed")
  model = _latest(mlmd, "Model")
  _, failures = eval_results.load_failures(evaluation.uri) if evaluation else (None, [])
  return RunSummary(
      evaluation_uri=evaluation.uri if evaluation else None,
      blessed=None if blessed is None else bool(blessed),
      pushed=bool(_prop(pushed, "pushed")),
      pushed_path=_prop(pushed, "pushed_destination") if _prop(pushed, "pushed") else None,
      grouping_uri=grouping.uri if grouping else None,
      groups=groups, overall=metrics.get((), {}),
      evaluation_id=evaluation.id if evaluation else None,
      candidate_model_uri=_prop(blessing, "current_model") or None,
      baseline_model_uri=_prop(blessing, "baseline_model") or None,
      metrics=metrics, failures=failures,
      gate=eval_results.load_gate(evaluation.uri) if evaluation else None,
      unchanged_version=_prop(pushed, "unchanged_version") or None,
      model_choice=(trainer.read_choice(path_utils.serving_model_path(model.uri))
                    if model else None))


def group_effects_csv(s: RunSummary) -> Optional[str]:
  """The evaluated model's group-effects table (written by the Trainer), None if it has none."""
  if not s.candidate_model_uri:
    return None
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = os.path.join(group_effects.model_dir(s.candidate_model_uri), group_effects.CSV_FILE)
  return path if tf.io.gfile.exists(path) else None


def _fmt(x, spec=".4f") -> str:
  return "-" if x is None else format(x, spec)


def group_names(grouping_uri: Optional[str]) -> Dict[int, str]:
  """A readable name per group id: its category (a-priori) or its centre in raw feature units
  (K-Means); the fallback group says what it holds."""
  if not grouping_uri:
    return {}
  try:
    g = grouping_store.load(grouping_uri)
  except (OSError, TypeError, ValueError):
    return {}
  names: Dict[int, str] = {}
  if getattr(g, "vocabulary", None):
    names = {i: str(v) for i, v in enumerate(g.vocabulary)}
    names[g.fallback_group] = "(fallback: rare, unseen or missing)"
  elif getattr(g, "centroids", None) is not None:
    import numpy as np  # pylint: disable=g-import-not-at-top
    centres = np.asarray(g.centroids) * np.asarray(g.scale) + np.asarray(g.mean)
    cols = list(getattr(g, "columns", None) or g.features)
    for i, c in enumerate(centres):
      names[i] = "centre " + ", ".join(f"{col}={v:.5g}" for col, v in zip(cols, c))
  return names


def _short(name: str, width: int = 44) -> str:
  return name if len(name) <= width else name[:width - 3] + "..."


def format_table(s: RunSummary, units: str = "label units", max_rows: int = 16) -> str:
  """Per-group RMSE; with more than `max_rows` groups the worst and best half each, plus a
  count of the groups left out (the report's CSV lists them all)."""
  names = group_names(s.grouping_uri)
  split = "+".join((s.gate or {}).get("splits", ["test"]))   # the Evaluator's example_splits
  lines = [f"| group | train rows | {split} rows | RMSE {split}: candidate | RMSE baseline "
           f"|  ({units})",
           "|---|---:|---:|---:|---:|"]

  def row(gid, r):
    name = _short(f"{gid} {names[gid]}" if gid in names else str(gid))
    return (f"| {name} | {_fmt(r.get('train_rows'), 'd')} | {_fmt(r['examples'], '.0f')} | "
            f"{_fmt(r['rmse'])} | {_fmt(r['baseline_rmse'])} |")

  items = list(s.groups.items())
  if len(items) > max_rows:
    ranked = sorted(items, key=lambda kv: -(kv[1]["rmse"] if kv[1]["rmse"] is not None else -1))
    half = max_rows // 2
    lines += [row(*kv) for kv in ranked[:half]]
    lines.append(f"| ... {len(items) - 2 * half} more groups (worst {half} above, best {half} "
                 "below) | | | | |")
    lines += [row(*kv) for kv in ranked[-half:]]
  else:
    lines += [row(*kv) for kv in items]
  cand = s.overall.get(eval_results.candidate_name(s.overall), {}) if s.overall else {}
  base = s.overall.get("baseline", {})
  lines.append(f"| **all** | | {_fmt(cand.get('example_count'), '.0f')} | "
               f"{_fmt(cand.get('root_mean_squared_error'))} | "
               f"{_fmt(base.get('root_mean_squared_error'))} |")
  return "\n".join(lines)


def describe(s: RunSummary, cwd: str = ".", units: str = "label units") -> List[str]:
  def rel(p):
    if not p or not os.path.isabs(p):
      return p
    r = os.path.relpath(p, cwd)
    return p if r.startswith("..") else r
  status = {True: "BLESSED", False: "NOT blessed", None: "no blessing"}[s.blessed]
  out = [format_table(s, units), "", f"model: {status}; evaluation: {rel(s.evaluation_uri)}"]
  cand = s.overall.get(eval_results.candidate_name(s.overall), {}) if s.overall else {}
  coverage = cand.get(interval_metrics.COVERAGE)
  if coverage is not None and coverage == coverage:   # NaN: a model without interval outputs
    split = "+".join((s.gate or {}).get("splits", ["test"]))
    out.append(f"prediction interval: interval coverage {coverage:.3f} of {split} rows, mean "
               f"width {_fmt(cand.get(interval_metrics.WIDTH))} ({units})")
  if s.model_choice:
    c = s.model_choice
    out.append(f"model variant: {c['variant']} -> {c['chosen']} (eval RMSE: " + ", ".join(
        f"{k} {v['eval_rmse']:.4g}" for k, v in c["candidates"].items()) + ")")
  for f in s.failures[:5]:
    base = s.metrics.get(f.slice, {}).get("baseline", {}).get(f.metric)
    out.append(f"  failed: {f.describe(base)[:200]}")
  if len(s.failures) > 5:
    out.append(f"  ... and {len(s.failures) - 5} more failed thresholds (see the report)")
  out.append(f"pushed model: {rel(s.pushed_path)}" if s.pushed else
             f"pushed model: unchanged, not pushed (same as version {s.unchanged_version})"
             if s.unchanged_version else "pushed model: none (not blessed, nothing pushed)")
  if s.grouping_uri:
    html = (grouping_store.load_summary(s.grouping_uri).get("report") or {}).get("html")
    if html:
      out.append(f"grouping report: {rel(os.path.join(s.grouping_uri, html))}")
  effects = group_effects_csv(s)
  if effects:
    out.append(f"group-effects table: {rel(effects)}")
  if s.report_path:
    out.append(f"report: {rel(s.report_path)}")
  return out
