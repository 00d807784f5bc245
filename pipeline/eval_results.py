"""Reads an Evaluator output into plain per-slice numbers (candidate and baseline)."""
from __future__ import annotations

import collections
from typing import Dict, Optional, Tuple

import tensorflow_model_analysis as tfma

SliceKey = Tuple[Tuple[str, str], ...]   # () is the overall slice


def slice_key(proto) -> SliceKey:
  parts = []
  for k in proto.single_slice_keys:
    kind = k.WhichOneof("kind")
    v = getattr(k, kind)
    parts.append((k.column, v.decode() if isinstance(v, bytes) else str(v)))
  return tuple(parts)


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
        "rmse": cand.get("root_mean_squared_error"),
        "baseline_rmse": base.get("root_mean_squared_error"),
    }
  return dict(sorted(rows.items()))
