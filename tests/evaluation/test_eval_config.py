"""The EvalConfig built from configs/ames.yaml, and the per-group gate decision."""
import json
import os

import pytest
import tensorflow_model_analysis as tfma

from components import grouped_evaluator
from models.grouped_regression import features as fk
from pipeline import eval_config as ec
from pipeline.config import ConfigError, load_config
from pipeline.from_config import pipeline_args

METRIC_CLASSES = {"ExampleCount", "MeanSquaredError", "RootMeanSquaredError",
                  "MeanAbsoluteError", "MeanLabel", "MeanPrediction", "Calibration",
                  "IntervalCoverage", "IntervalWidth"}


@pytest.fixture(scope="module")
def args():
  return pipeline_args(load_config("configs/ames.yaml",
                                   overrides={"evaluation.extra_slices": ["Neighborhood"]}))


def test_slices_are_overall_group_and_extra_columns(args):
  specs = list(args["eval_config"].slicing_specs)
  assert specs == [tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[fk.GROUP_KEY]),
                   tfma.SlicingSpec(feature_keys=["Neighborhood"])]


def test_every_metric_is_requested_once_and_compiled_metrics_are_off(args):
  config = args["eval_config"]
  classes = [m.class_name for s in config.metrics_specs for m in s.metrics]
  assert sorted(classes) == sorted(METRIC_CLASSES)
  assert config.options.include_default_metrics.value is False
  assert config.model_specs[0].label_key == "log_sale_price"
  assert config.model_specs[0].prediction_key == fk.PREDICTION_KEY


def test_overall_rmse_has_the_absolute_bound_and_the_relative_tolerance(args):
  cfg = load_config("configs/ames.yaml")
  rmse = [m for s in args["eval_config"].metrics_specs for m in s.metrics
          if m.class_name == ec.RMSE_CLASS][0]
  assert json.loads(rmse.config)["name"] == ec.RMSE
  (overall,) = rmse.per_slice_thresholds
  assert list(overall.slicing_specs) == [tfma.SlicingSpec()]
  t = overall.threshold
  assert t.value_threshold.upper_bound.value == cfg.evaluation.rmse_upper_bound
  assert t.change_threshold.relative.value == cfg.evaluation.overall_rmse_tolerance
  assert t.change_threshold.direction == tfma.MetricDirection.LOWER_IS_BETTER


def test_interval_coverage_gates_only_when_the_config_sets_a_minimum(args):
  cov = [m for s in args["eval_config"].metrics_specs for m in s.metrics
         if m.class_name == "IntervalCoverage"][0]
  assert cov.module == "components.interval_metrics" and not cov.per_slice_thresholds
  gated = pipeline_args(load_config("configs/ames.yaml",
                                    overrides={"evaluation.min_interval_coverage": 0.85}))
  cov = [m for s in gated["eval_config"].metrics_specs for m in s.metrics
         if m.class_name == "IntervalCoverage"][0]
  (overall,) = cov.per_slice_thresholds
  assert list(overall.slicing_specs) == [tfma.SlicingSpec()]
  assert overall.threshold.value_threshold.lower_bound.value == 0.85
  for bad, why in ((1.5, "must be in (0, 1)"), ("high", "evaluation.min_interval_coverage")):
    with pytest.raises(ConfigError, match=why.replace("(", r"\(").replace(")", r"\)")):
      load_config("configs/ames.yaml", overrides={"evaluation.min_interval_coverage": bad})


def test_group_gate_comes_from_the_config(args):
  cfg = load_config("configs/ames.yaml")
  gate = args["group_gate"]
  assert gate.relative_tolerance == cfg.evaluation.group_rmse_tolerance
  assert gate.min_examples == cfg.evaluation.min_group_examples
  assert ec.GroupGate.from_json(gate.to_json()) == gate


def test_only_groups_with_enough_eval_rows_get_a_threshold():
  config = ec.build_eval_config(label_key="y", rmse_upper_bound=1.0, overall_rmse_tolerance=0.05)
  gate = ec.GroupGate(relative_tolerance=0.2, min_examples=15)
  decision = ec.add_group_thresholds(config, [40, 3, 15, 0, 14], gate)
  assert decision["gated"] == [0, 2] and decision["not_gated"] == [1, 3, 4]
  rmse = [m for m in config.metrics_specs[0].metrics if m.class_name == ec.RMSE_CLASS][0]
  group_threshold = rmse.per_slice_thresholds[1]
  assert [dict(s.feature_values) for s in group_threshold.slicing_specs] == [
      {fk.GROUP_KEY: "0"}, {fk.GROUP_KEY: "2"}]
  assert group_threshold.threshold.change_threshold.relative.value == 0.2
  assert not group_threshold.threshold.HasField("value_threshold")


def test_no_threshold_is_added_when_every_group_is_small():
  config = ec.build_eval_config(label_key="y", rmse_upper_bound=1.0, overall_rmse_tolerance=0.05)
  before = config.SerializeToString()
  assert ec.add_group_thresholds(config, [3, 4], ec.GroupGate(min_examples=15))["gated"] == []
  assert config.SerializeToString() == before


def test_gating_without_an_rmse_metric_is_a_clear_error():
  config = tfma.EvalConfig(metrics_specs=[tfma.MetricsSpec(
      metrics=[tfma.MetricConfig(class_name="ExampleCount")])])
  with pytest.raises(ec.EvalConfigError, match="RootMeanSquaredError.*ExampleCount"):
    ec.add_group_thresholds(config, [20], ec.GroupGate())


def _grouping_dir(tmp_path, counts):
  with open(os.path.join(tmp_path, "summary.json"), "w") as f:
    json.dump({"counts": counts}, f)
  return str(tmp_path)


def test_eval_counts_are_read_from_the_grouping_summary(tmp_path):
  uri = _grouping_dir(tmp_path, {"train": [50, 60], "eval": [12, 20], "test": [1, 2]})
  assert grouped_evaluator.eval_counts(uri, ["eval"]) == [12, 20]
  assert grouped_evaluator.eval_counts(uri, ["eval", "test"]) == [13, 22]


def test_a_split_the_grouping_did_not_count_names_artifact_and_split(tmp_path):
  uri = _grouping_dir(tmp_path, {"train": [50, 60]})
  with pytest.raises(ec.EvalConfigError) as err:
    grouped_evaluator.eval_counts(uri, ["eval"])
  assert uri in str(err.value) and "no counts for split(s) ['eval']" in str(err.value)


def test_an_extra_slice_that_is_not_a_column_is_rejected_by_name():
  with pytest.raises(ConfigError, match=r"evaluation\.extra_slices: column\(s\) \['Neighbourhood'\]"):
    load_config("configs/ames.yaml", overrides={"evaluation.extra_slices": ["Neighbourhood"]})


def test_a_non_positive_rmse_bound_is_rejected():
  with pytest.raises(ConfigError, match="evaluation.rmse_upper_bound must be > 0"):
    load_config("configs/ames.yaml", overrides={"evaluation.rmse_upper_bound": 0})
