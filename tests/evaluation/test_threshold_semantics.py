"""TFMA's own validator applied to our EvalConfig: which slice fails which threshold.

The pipeline tests prove the same end to end with trained models; these pin the semantics in
milliseconds: per-group thresholds match the int64 slice keys TFMA builds from `group_id`,
groups below the minimum never fail, and without a baseline only the absolute bound applies
(the config is prepared exactly as the Evaluator executor prepares it).
"""
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics import metric_types

from models.grouped_regression import features as fk
from pipeline import eval_config as ec

BOUND, OVERALL_TOL, GROUP_TOL = 0.5, 0.05, 0.15


def _config(has_baseline: bool, counts=(40, 40, 5)) -> tfma.EvalConfig:
  config = ec.build_eval_config(label_key="y", rmse_upper_bound=BOUND,
                                overall_rmse_tolerance=OVERALL_TOL)
  ec.add_group_thresholds(config, list(counts), ec.GroupGate(relative_tolerance=GROUP_TOL,
                                                             min_examples=15))
  # what tfx.components.Evaluator's executor does before running TFMA
  return tfma.utils.update_eval_config_with_defaults(config, has_baseline=has_baseline,
                                                     rubber_stamp=True)


def _metrics(candidate: float, baseline=None):
  name = "candidate" if baseline is not None else ""
  key = metric_types.MetricKey(name=ec.RMSE, model_name=name)
  out = {key: candidate}
  if baseline is not None:
    out[metric_types.MetricKey(name=ec.RMSE, model_name="baseline")] = baseline
    out[key.make_diff_key()] = candidate - baseline
  return out


def _failures(config, slice_key, candidate, baseline=None):
  result = metrics_validator.validate_metrics((slice_key, _metrics(candidate, baseline)), config)
  return [(f.metric_key.name, f.metric_key.is_diff) for s in result.metric_validations_per_slice
          for f in s.failures]


def _group(g):   # the slice key TFMA yields for an int64 feature
  return ((fk.GROUP_KEY, g),)


@pytest.mark.parametrize("candidate,baseline,failed", [
    (0.30, 0.30, []),                           # unchanged
    (0.314, 0.30, []),                          # +4.7% within 5%
    (0.32, 0.30, [(ec.RMSE, True)]),            # +6.7%: relative rule
    (0.55, 0.60, [(ec.RMSE, False)]),           # better than baseline, above the bound
])
def test_overall_rules(candidate, baseline, failed):
  assert _failures(_config(True), (), candidate, baseline) == failed


def test_a_large_group_that_worsens_beyond_its_tolerance_fails():
  config = _config(True)
  assert _failures(config, _group(1), 0.30, 0.20) == [(ec.RMSE, True)]        # +50%
  assert _failures(config, _group(1), 0.22, 0.20) == []                       # +10%
  assert _failures(config, _group(0), 0.30, 0.20) == [(ec.RMSE, True)]


def test_group_slices_have_no_absolute_bound():
  assert _failures(_config(True), _group(0), 0.9, 0.9) == []   # above BOUND, unchanged


def test_a_group_below_the_minimum_is_never_gated():
  assert _failures(_config(True), _group(2), 0.90, 0.10) == []                # 5 rows, +800%


def test_a_group_not_in_the_eval_counts_is_not_gated():
  assert _failures(_config(True), _group(7), 0.90, 0.10) == []


def test_first_run_keeps_only_the_absolute_bound():
  config = _config(False)
  assert not tfma.utils.has_change_threshold(config)
  assert _failures(config, (), 0.45) == []
  assert _failures(config, (), 0.55) == [(ec.RMSE, False)]
  assert _failures(config, _group(1), 0.90) == []
