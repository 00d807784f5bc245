"""What a finished run produced, read back from MLMD: evaluation, blessing, pushed model."""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from tfx.utils import path_utils

from components.grouping import store as grouping_store
from models.grouped_regression import features as fk
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
      model_choice=(trainer.read_choice(path_utils.serving_model_path(model.uri))
                    if model else None))


def _fmt(x, spec=".4f") -> str:
  return "-" if x is None else format(x, spec)


def format_table(s: RunSummary) -> str:
  lines = ["| group | train rows | eval rows | RMSE candidate | RMSE baseline |",
           "|---:|---:|---:|---:|---:|"]
  for gid, r in s.groups.items():
    lines.append(f"| {gid} | {_fmt(r.get('train_rows'), 'd')} | {_fmt(r['examples'], '.0f')} | "
                 f"{_fmt(r['rmse'])} | {_fmt(r['baseline_rmse'])} |")
  cand = s.overall.get(eval_results.candidate_name(s.overall), {}) if s.overall else {}
  base = s.overall.get("baseline", {})
  lines.append(f"| **all** | | {_fmt(cand.get('example_count'), '.0f')} | "
               f"{_fmt(cand.get('root_mean_squared_error'))} | "
               f"{_fmt(base.get('root_mean_squared_error'))} |")
  return "\n".join(lines)


def describe(s: RunSummary, cwd: str = ".") -> List[str]:
  rel = lambda p: os.path.relpath(p, cwd) if p and os.path.isabs(p) else p  # noqa: E731
  status = {True: "BLESSED", False: "NOT blessed", None: "no blessing"}[s.blessed]
  out = [format_table(s), "", f"model: {status}; evaluation: {rel(s.evaluation_uri)}"]
  if s.model_choice:
    c = s.model_choice
    out.append(f"model variant: {c['variant']} -> {c['chosen']} (eval RMSE: " + ", ".join(
        f"{k} {v['eval_rmse']:.4g}" for k, v in c["candidates"].items()) + ")")
  for f in s.failures:
    base = s.metrics.get(f.slice, {}).get("baseline", {}).get(f.metric)
    out.append(f"  failed: {f.describe(base)}")
  out.append(f"pushed model: {rel(s.pushed_path)}" if s.pushed else
             "pushed model: none (not blessed, nothing pushed)")
  if s.report_path:
    out.append(f"report: {rel(s.report_path)}")
  return out
