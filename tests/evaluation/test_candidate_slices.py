"""Group slices come from the CANDIDATE's transform graph, and both models are scored on those rows.

K-Means ids are not stable across refits, so the baseline's group 1 is not the candidate's
group 1. Two tiny SavedModels with the pipeline's contract (`serving_default` and
`transform_features`, both on serialized tf.Examples) number the same two groups the other way
round; the real GroupedEvaluator executor (stock TFX Evaluator + TFMA) then evaluates them on a
`test` split. Without the candidate-only slicing, TFMA 0.47 takes the union of both models'
`group_id` values and every row lands in both group slices.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from components import grouped_evaluator
from components.group_gate import RMSE
from pipeline import eval_results
from pipeline.eval_config import build_eval_config
from tests.evaluation import evaluator_harness as harness

N = 120
CAND_ERR = 0.1                  # candidate: prediction = x + 0.1 everywhere
BASE_ERR = {1: 0.5, 0: 0.2}     # baseline: + 0.5 where x > 0, + 0.2 elsewhere


class _Model(tf.Module):
  """group = (x > 0), renumbered when `flip`; prediction = x + error by that group."""

  def __init__(self, flip: bool, errors):
    super().__init__()
    self.flip, self.errors = flip, errors

  def _group(self, x):
    positive = tf.cast(x > 0, tf.int64)
    return 1 - positive if self.flip else positive

  @tf.function(input_signature=harness.EXAMPLES_SPEC)
  def serving_default(self, examples):
    x = harness.parse_x(examples)
    err = tf.where(x > 0, self.errors[1], self.errors[0])
    return {"prediction": tf.reshape(x + err, [-1, 1]),
            "group_id": tf.reshape(self._group(x), [-1, 1])}

  @tf.function(input_signature=harness.EXAMPLES_SPEC)
  def transform_features(self, examples):
    return {"group_id": self._group(harness.parse_x(examples))}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("candidate_slices"))
  xs = np.random.default_rng(0).uniform(-1, 1, N).astype(np.float32)
  cand_groups = (xs > 0).astype(int)          # candidate numbering: group 1 = x > 0
  config = build_eval_config(label_key="y", rmse_upper_bound=10.0, overall_rmse_tolerance=10.0)
  eval_uri, _ = harness.evaluate(
      root, harness.write_test_split(root, ({"x": x, "y": x} for x in xs)),
      harness.save_model(os.path.join(root, "candidate"),
                         _Model(False, {1: CAND_ERR, 0: CAND_ERR})),
      cand_groups, config,
      baseline=harness.save_model(os.path.join(root, "baseline"), _Model(True, BASE_ERR)))
  return eval_results.load_slice_metrics(eval_uri), cand_groups, xs


def test_group_slices_are_the_candidates_groups(evaluated):
  metrics, cand_groups, _ = evaluated
  groups = {k: v for k, v in metrics.items() if k}
  assert set(groups) == {(("group_id", "0"),), (("group_id", "1"),)}
  for g in (0, 1):   # each row in exactly one slice: the candidate's assignment
    m = metrics[(("group_id", str(g)),)]
    assert m["candidate"]["example_count"] == int((cand_groups == g).sum())
    assert m["baseline"]["example_count"] == int((cand_groups == g).sum())
  assert metrics[()]["candidate"]["example_count"] == N


def test_baseline_is_scored_on_the_candidates_rows(evaluated):
  metrics, _, _ = evaluated
  # candidate group 1 is x > 0, where the baseline errs by 0.5 (its own numbering calls it 0)
  for g in (0, 1):
    m = metrics[(("group_id", str(g)),)]
    assert m["candidate"][RMSE] == pytest.approx(CAND_ERR, abs=1e-5)
    assert m["baseline"][RMSE] == pytest.approx(BASE_ERR[g], abs=1e-5)


def test_the_evaluator_finds_both_hooks_and_a_pipeline_builds_again_after(tmp_path):
  """The stock executor looks every hook up in the component's module_path (and silently drops
  one it can't find). udf_utils re-imports that module with importlib.reload; that must not leave two
  generations of the GroupedEvaluator spec class in the process (a second pipeline built in
  the same process, as Airflow's scheduler and the tests do, then failed spec validation)."""
  from tfx.components.util import udf_utils
  from pipeline.config import load_config
  from pipeline.from_config import pipeline_args
  from pipeline.pipeline import create_pipeline

  cfg = load_config("configs/ames.yaml", overrides={"outputs.root": str(tmp_path)})
  create_pipeline(**pipeline_args(cfg))
  evaluator = {c.id: c for c in create_pipeline(**pipeline_args(cfg)).components}["Evaluator"]
  hook = udf_utils.get_fn(evaluator.exec_properties, "custom_extractors")  # as the executor does
  assert hook.__name__ == "custom_extractors"
  evaluator = {c.id: c for c in create_pipeline(**pipeline_args(cfg)).components}["Evaluator"]
  assert isinstance(evaluator, grouped_evaluator.GroupedEvaluator)
