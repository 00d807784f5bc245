"""The per-group blessing rule the GroupedEvaluator applies at run time, and the file it writes.

It lives on the component side because the executor needs it and components/ never imports
pipeline/; pipeline/eval_config.py builds the static part of the EvalConfig and re-uses these.
A group with at least `min_examples` rows in the evaluated (test) split gets a TFMA RMSE change
threshold against the baseline; smaller groups are sliced and reported, not gated.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Sequence

import tensorflow_model_analysis as tfma

from models.grouped_regression import features as fk

RMSE = "root_mean_squared_error"
RMSE_CLASS = "RootMeanSquaredError"
GATE_FILE = "group_gate.json"   # beside the TFMA output; read by pipeline/eval_results.py


class EvalConfigError(ValueError):
  """The eval config or the grouping counts cannot produce the requested thresholds."""


@dataclasses.dataclass
class GroupGate:
  """Per-group rule the GroupedEvaluator turns into TFMA thresholds at run time."""
  group_feature: str = fk.GROUP_KEY
  relative_tolerance: float = 0.15
  min_examples: int = 15

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "GroupGate":
    return cls(**json.loads(text))


def change_threshold(tolerance: float) -> tfma.GenericChangeThreshold:
  """(candidate - baseline) / baseline <= tolerance, for a lower-is-better metric."""
  return tfma.GenericChangeThreshold(direction=tfma.MetricDirection.LOWER_IS_BETTER,
                                     relative={"value": tolerance})


def gate_decision(counts: Sequence[int], gate: GroupGate) -> Dict[str, Any]:
  """Which group ids are gated (>= min_examples evaluated rows) and which are only reported."""
  counts = [int(c) for c in counts]
  return {
      "group_feature": gate.group_feature,
      "relative_tolerance": gate.relative_tolerance,
      "min_examples": gate.min_examples,
      "eval_counts": counts,
      "gated": [g for g, n in enumerate(counts) if n >= gate.min_examples and n > 0],
      "not_gated": [g for g, n in enumerate(counts) if n < gate.min_examples or n == 0],
  }


def add_group_thresholds(eval_config: tfma.EvalConfig, counts: Sequence[int],
                         gate: GroupGate) -> Dict[str, Any]:
  """Adds an RMSE change threshold for every gated group to `eval_config` (in place).

  Returns the decision (see gate_decision). The threshold's slice is
  `feature_values={group_feature: "<id>"}`; TFMA matches it against the int64 slice key that
  the `feature_keys=[group_feature]` slicing spec yields (it converts "3" to 3 when comparing).
  """
  decision = gate_decision(counts, gate)
  rmse_configs = [m for spec in eval_config.metrics_specs for m in spec.metrics
                  if m.class_name == RMSE_CLASS]
  if not rmse_configs:
    raise EvalConfigError(f"eval_config has no {RMSE_CLASS} metric to gate groups on; "
                          f"metrics: {[m.class_name for s in eval_config.metrics_specs for m in s.metrics]}")
  if decision["gated"]:
    rmse_configs[0].per_slice_thresholds.add(
        slicing_specs=[tfma.SlicingSpec(feature_values={gate.group_feature: str(g)})
                       for g in decision["gated"]],
        threshold=tfma.MetricThreshold(change_threshold=change_threshold(
            gate.relative_tolerance)))
  return decision
