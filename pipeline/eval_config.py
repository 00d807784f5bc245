"""TFMA EvalConfig built from the project config, and the per-group blessing thresholds.

Slices: overall, one per group id, one per value of each extra slice column. Metrics on every
slice: example count, MSE, RMSE, MAE, mean label, mean prediction, calibration (mean
prediction / mean label), and the served interval's coverage and mean width
(components/interval_metrics.py). Blessing is decided by TFMA thresholds on RMSE:

* overall, absolute: RMSE <= `rmse_upper_bound` (always);
* overall, relative: RMSE may worsen by at most `overall_rmse_tolerance` vs the baseline;
* per group, relative: RMSE may worsen by at most `group_rmse_tolerance` vs the baseline, for
  groups with at least `min_group_examples` test rows. Those counts exist only once the Grouping
  component has run, so `add_group_thresholds` (components/group_gate.py) is called by the
  GroupedEvaluator executor at run time; smaller groups are sliced and reported, not gated;
* interval coverage gates only when `min_interval_coverage` is set: overall coverage >= it.

Every number comes from the `test` split (the Evaluator's `example_splits`), which neither
training nor any model choice sees. The `group_id` slice comes from the candidate model's own
`transform_features` signature (`preprocessing_function_names`), i.e. from the graph serving runs.

TFMA drops change thresholds when there is no baseline model (the Evaluator rubber-stamps the
first run), so a first run is blessed on the absolute bound alone.
"""
from __future__ import annotations

import json
from typing import List, Optional, Sequence

import tensorflow_model_analysis as tfma

from components import interval_metrics
from components.group_gate import (  # pylint: disable=unused-import  (re-exported)
    RMSE, RMSE_CLASS, EvalConfigError, GroupGate, add_group_thresholds, change_threshold,
    gate_decision)
from models.grouped_regression import features as fk

TRANSFORM_SIGNATURE = "transform_features"   # exported by models/grouped_regression/signatures.py
CANDIDATE = "candidate"
BASELINE = "baseline"
# metric name -> what the report calls it; every one is computed on every slice
METRIC_NAMES = {
    "example_count": "examples",
    "mean_squared_error": "MSE",
    RMSE: "RMSE",
    "mean_absolute_error": "MAE",
    "mean_label": "mean label",
    "mean_prediction": "mean prediction",
    "calibration": "calibration (mean pred / mean label)",
    interval_metrics.COVERAGE: "interval coverage",
    interval_metrics.WIDTH: "mean interval width",
}


def rmse_metric() -> tfma.MetricConfig:
  return tfma.MetricConfig(class_name=RMSE_CLASS, config=json.dumps({"name": RMSE}))


def coverage_metric(min_coverage: Optional[float] = None) -> tfma.MetricConfig:
  """Interval coverage; with `min_coverage`, a lower bound on the overall slice."""
  m = tfma.MetricConfig(class_name="IntervalCoverage", module=interval_metrics.MODULE)
  if min_coverage is not None:
    m.per_slice_thresholds.add(
        slicing_specs=[tfma.SlicingSpec()],
        threshold=tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
            lower_bound={"value": float(min_coverage)})))
  return m


def metrics(rmse: tfma.MetricConfig,
            coverage: Optional[tfma.MetricConfig] = None) -> List[tfma.MetricConfig]:
  """Metric configs computed for every slice; `rmse` (and `coverage`) carry the thresholds."""
  return [
      tfma.MetricConfig(class_name="ExampleCount"),
      tfma.MetricConfig(class_name="MeanSquaredError", config='{"name": "mean_squared_error"}'),
      rmse,
      tfma.MetricConfig(class_name="MeanAbsoluteError", config='{"name": "mean_absolute_error"}'),
      tfma.MetricConfig(class_name="MeanLabel"),
      tfma.MetricConfig(class_name="MeanPrediction"),
      tfma.MetricConfig(class_name="Calibration"),   # mean prediction / mean label
      coverage or coverage_metric(),                 # the served [lower, upper]
      tfma.MetricConfig(class_name="IntervalWidth", module=interval_metrics.MODULE),
  ]


def overall_threshold(rmse_upper_bound: float, tolerance: float) -> tfma.MetricThreshold:
  """Absolute bound always; relative worsening bound once a blessed baseline exists."""
  return tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(upper_bound={"value": rmse_upper_bound}),
      change_threshold=change_threshold(tolerance))


def build_eval_config(*, label_key: str, rmse_upper_bound: float,
                      overall_rmse_tolerance: float,
                      extra_slices: Sequence[str] = (),
                      min_interval_coverage: Optional[float] = None) -> tfma.EvalConfig:
  slicing = [tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[fk.GROUP_KEY])]
  slicing += [tfma.SlicingSpec(feature_keys=[c]) for c in extra_slices]
  rmse = rmse_metric()
  rmse.per_slice_thresholds.add(
      slicing_specs=[tfma.SlicingSpec()],
      threshold=overall_threshold(rmse_upper_bound, overall_rmse_tolerance))
  return tfma.EvalConfig(
      # TF_GENERIC: TFMA scores every model through its serving_default signature, as TF
      # Serving does, whichever family `auto` kept. Left unset, TFMA first tries
      # tf.keras.models.load_model on each model (candidate and baseline) to guess the type, a
      # full Keras revival of a Keras export -- seconds per run, and a different code path for
      # the boosted export.
      model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key=label_key,
                                  model_type=tfma.TF_GENERIC,
                                  prediction_key=fk.PREDICTION_KEY,
                                  preprocessing_function_names=[TRANSFORM_SIGNATURE])],
      slicing_specs=slicing,
      metrics_specs=[tfma.MetricsSpec(metrics=metrics(rmse,
                                                      coverage_metric(min_interval_coverage)))],
      options=_options())


def _options() -> tfma.Options:
  options = tfma.Options()
  options.include_default_metrics.value = False  # the compiled Keras metrics would duplicate RMSE
  return options
