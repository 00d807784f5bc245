"""TFMA EvalConfig built from the project config, and the per-group blessing thresholds.

Slices: overall, one per group id, one per value of each extra slice column. Metrics on every
slice: example count, MSE, RMSE, MAE, mean label, mean prediction and calibration (mean
prediction / mean label). Blessing is decided by TFMA thresholds on RMSE alone:

* overall, absolute: RMSE <= `rmse_upper_bound` (always);
* overall, relative: RMSE may worsen by at most `overall_rmse_tolerance` vs the baseline;
* per group, relative: RMSE may worsen by at most `group_rmse_tolerance` vs the baseline, for
  groups with at least `min_group_examples` eval rows. Those counts exist only once the Grouping
  component has run, so `add_group_thresholds` is called by the GroupedEvaluator executor at run
  time (components/grouped_evaluator.py); smaller groups are sliced and reported, not gated.

TFMA drops change thresholds when there is no baseline model (the Evaluator rubber-stamps the
first run), so a first run is blessed on the absolute bound alone.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List, Sequence

import tensorflow_model_analysis as tfma

from models.grouped_regression import features as fk

CANDIDATE = "candidate"
BASELINE = "baseline"
RMSE = "root_mean_squared_error"
RMSE_CLASS = "RootMeanSquaredError"
# metric name -> what the report calls it; every one is computed on every slice
METRIC_NAMES = {
    "example_count": "examples",
    "mean_squared_error": "MSE",
    RMSE: "RMSE",
    "mean_absolute_error": "MAE",
    "mean_label": "mean label",
    "mean_prediction": "mean prediction",
    "calibration": "calibration (mean pred / mean label)",
}


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


def rmse_metric() -> tfma.MetricConfig:
  return tfma.MetricConfig(class_name=RMSE_CLASS, config=json.dumps({"name": RMSE}))


def metrics(rmse: tfma.MetricConfig) -> List[tfma.MetricConfig]:
  """Metric configs computed for every slice; `rmse` carries the thresholds."""
  return [
      tfma.MetricConfig(class_name="ExampleCount"),
      tfma.MetricConfig(class_name="MeanSquaredError", config='{"name": "mean_squared_error"}'),
      rmse,
      tfma.MetricConfig(class_name="MeanAbsoluteError", config='{"name": "mean_absolute_error"}'),
      tfma.MetricConfig(class_name="MeanLabel"),
      tfma.MetricConfig(class_name="MeanPrediction"),
      tfma.MetricConfig(class_name="Calibration"),   # mean prediction / mean label
  ]


def change_threshold(tolerance: float) -> tfma.GenericChangeThreshold:
  """(candidate - baseline) / baseline <= tolerance, for a lower-is-better metric."""
  return tfma.GenericChangeThreshold(direction=tfma.MetricDirection.LOWER_IS_BETTER,
                                     relative={"value": tolerance})


def overall_threshold(rmse_upper_bound: float, tolerance: float) -> tfma.MetricThreshold:
  """Absolute bound always; relative worsening bound once a blessed baseline exists."""
  return tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(upper_bound={"value": rmse_upper_bound}),
      change_threshold=change_threshold(tolerance))


def build_eval_config(*, label_key: str, rmse_upper_bound: float,
                      overall_rmse_tolerance: float,
                      extra_slices: Sequence[str] = ()) -> tfma.EvalConfig:
  slicing = [tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[fk.GROUP_KEY])]
  slicing += [tfma.SlicingSpec(feature_keys=[c]) for c in extra_slices]
  rmse = rmse_metric()
  rmse.per_slice_thresholds.add(
      slicing_specs=[tfma.SlicingSpec()],
      threshold=overall_threshold(rmse_upper_bound, overall_rmse_tolerance))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key=label_key,
                                  prediction_key=fk.PREDICTION_KEY)],
      slicing_specs=slicing,
      metrics_specs=[tfma.MetricsSpec(metrics=metrics(rmse))],
      options=_options())


def _options() -> tfma.Options:
  options = tfma.Options()
  options.include_default_metrics.value = False  # the compiled Keras metrics would duplicate RMSE
  return options


def gate_decision(counts: Sequence[int], gate: GroupGate) -> Dict[str, Any]:
  """Which group ids are gated (>= min_examples eval rows) and which are only reported."""
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
