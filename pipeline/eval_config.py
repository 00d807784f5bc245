"""TFMA EvalConfig built from the project config: slices overall / per group / extra columns,
regression metrics per slice, and the blessing thresholds.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow_model_analysis as tfma

from models.grouped_regression import features as fk

CANDIDATE = "candidate"
BASELINE = "baseline"
RMSE = "root_mean_squared_error"


def rmse_metric() -> tfma.MetricConfig:
  return tfma.MetricConfig(class_name="RootMeanSquaredError", config='{"name": "%s"}' % RMSE)


def metrics(rmse: tfma.MetricConfig) -> list:
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


def overall_threshold(rmse_upper_bound: float, tolerance: float) -> tfma.MetricThreshold:
  """Absolute bound always; relative worsening bound once a blessed baseline exists (TFMA drops
  change thresholds when there is no baseline, so the first run is judged on the bound alone)."""
  return tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(upper_bound={"value": rmse_upper_bound}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.LOWER_IS_BETTER, relative={"value": tolerance},
          absolute={"value": 1e9}))


def build_eval_config(*, label_key: str, rmse_upper_bound: float,
                      overall_rmse_tolerance: float,
                      extra_slices: Sequence[str] = ()) -> tfma.EvalConfig:
  slicing = [tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[fk.GROUP_KEY])]
  slicing += [tfma.SlicingSpec(feature_keys=[c]) for c in extra_slices]
  rmse = rmse_metric()
  rmse.per_slice_thresholds.add(
      slicing_specs=[tfma.SlicingSpec()],
      threshold=overall_threshold(rmse_upper_bound, overall_rmse_tolerance))
  spec = tfma.MetricsSpec(metrics=metrics(rmse))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key=label_key,
                                  prediction_key=fk.PREDICTION_KEY)],
      slicing_specs=slicing,
      metrics_specs=[spec])
