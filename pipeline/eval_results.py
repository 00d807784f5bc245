"""Reads an Evaluator output into plain Python: per-slice metrics (candidate and baseline), the
thresholds that failed, and the per-group gate decision. No TFX/MLMD here: only the directory."""
from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.group_gate import GATE_FILE, RMSE

SliceKey = Tuple[Tuple[str, str], ...]   # () is the overall slice


def slice_key(proto) -> SliceKey:
  parts = []
  for k in proto.single_slice_keys:
    kind = k.WhichOneof("kind")
    v = getattr(k, kind)
    parts.append((k.column, v.decode() if isinstance(v, bytes) else str(v)))
  return tuple(parts)


def slice_label(key: SliceKey) -> str:
  return "overall" if not key else ", ".join(f"{c} = {v}" for c, v in key)


def load_slice_metrics(eval_uri: str) -> Dict[SliceKey, Dict[str, Dict[str, float]]]:
  """{slice: {model_name: {metric: value}}}; model_name is 'candidate'/'baseline' or ''."""
  out: Dict[SliceKey, Dict[str, Dict[str, float]]] = collections.defaultdict(
      lambda: collections.defaultdict(dict))
  for m in tfma.load_metrics(eval_uri):
    key = slice_key(m.slice_key)
    for kv in m.metric_keys_and_values:
      if kv.key.is_diff:
        continue
      if kv.value.WhichOneof("type") != "double_value":
        continue
      out[key][kv.key.model_name][kv.key.name] = kv.value.double_value.value
  return {k: dict(v) for k, v in out.items()}


def candidate_name(models: Dict[str, Dict[str, float]]) -> str:
  return "candidate" if "candidate" in models else next(iter(models), "")


def group_rows(metrics, group_key: str) -> Dict[int, Dict[str, Optional[float]]]:
  """Per group: eval examples, candidate RMSE, baseline RMSE (None before a baseline exists)."""
  rows = {}
  for key, models in metrics.items():
    if len(key) != 1 or key[0][0] != group_key:
      continue
    cand = models.get(candidate_name(models), {})
    base = models.get("baseline", {})
    rows[int(key[0][1])] = {
        "examples": cand.get("example_count"),
        "rmse": cand.get(RMSE),
        "baseline_rmse": base.get(RMSE),
    }
  return dict(sorted(rows.items()))


@dataclasses.dataclass
class Failure:
  """One threshold the candidate did not meet on one slice."""
  slice: SliceKey
  metric: str
  kind: str                        # "absolute" (value bound) or "relative" (change vs baseline)
  value: Optional[float]           # absolute: the metric; relative: candidate - baseline
  bound: Optional[float]           # absolute: upper/lower bound; relative: allowed ratio
  message: str = ""

  def describe(self, baseline: Optional[float] = None) -> str:
    where = slice_label(self.slice)
    if self.kind == "relative":
      rel = "" if not baseline or self.value is None else f" ({100 * self.value / baseline:+.1f}%"
      rel += f", allowed {100 * self.bound:+.0f}%)" if rel else ""
      return f"{where}: {self.metric} worsened by {self.value:+.4f} vs the baseline{rel}"
    if self.value is None:
      return f"{where}: {self.metric} missing ({self.message.strip()})"
    return f"{where}: {self.metric} = {self.value:.4f}, bound {self.bound:.4f}"


def _bound(threshold) -> Tuple[str, Optional[float]]:
  if threshold.HasField("change_threshold"):
    c = threshold.change_threshold
    return "relative", c.relative.value if c.HasField("relative") else c.absolute.value
  v = threshold.value_threshold
  return "absolute", (v.upper_bound.value if v.HasField("upper_bound") else
                      v.lower_bound.value if v.HasField("lower_bound") else None)


def load_failures(eval_uri: str) -> Tuple[Optional[bool], List[Failure]]:
  """(validation_ok, failures); (None, []) when the Evaluator validated nothing."""
  try:
    result = tfma.load_validation_result(eval_uri)
  except (FileNotFoundError, tf.errors.NotFoundError, IndexError):
    return None, []
  failures = []
  for per_slice in result.metric_validations_per_slice:
    key = slice_key(per_slice.slice_key)
    for f in per_slice.failures:
      kind, bound = _bound(f.metric_threshold)
      value = (f.metric_value.double_value.value
               if f.metric_value.WhichOneof("type") == "double_value" else None)
      failures.append(Failure(slice=key, metric=f.metric_key.name, kind=kind, value=value,
                              bound=bound, message=f.message))
  return result.validation_ok, failures


def load_gate(eval_uri: str) -> Optional[Dict[str, Any]]:
  """The GroupedEvaluator's decision (gated / not gated groups), None if absent."""
  path = os.path.join(eval_uri, GATE_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)
