"""Interval coverage and width per slice in the real GroupedEvaluator (stock TFX Evaluator + TFMA),
report-only unless evaluation.min_interval_coverage is set; both reach the evaluation report,
which also shows the Trainer's group-effects table and its caterpillar plot.

A tiny SavedModel with the pipeline's contract (`serving_default` and `transform_features` on
serialized tf.Examples) predicts x with a per-group interval x -+ W[g]; the labels are x + e with
e chosen per row, so the expected coverage and width of every slice are computed here directly.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from components import interval_metrics
from models.grouped_regression import group_effects
from pipeline import eval_results
from pipeline import report as report_lib
from pipeline.eval_config import build_eval_config
from tests.evaluation import evaluator_harness as harness
from pipeline.report import content as content_lib
from pipeline.report import page
from pipeline.run_summary import RunSummary, describe

N = 200
HALF_WIDTH = (0.5, 1.0)               # group 0: x <= 0, group 1: x > 0
BASELINE_HALF_WIDTH = (1.5, 0.2)


class _Model(tf.Module):
  """prediction x, interval [x - W[g], x + W[g]] with g = (x > 0)."""

  def __init__(self, half_width=HALF_WIDTH):
    super().__init__()
    self.half_width = tf.constant(half_width, tf.float32)

  @tf.function(input_signature=harness.EXAMPLES_SPEC)
  def serving_default(self, examples):
    x = harness.parse_x(examples)
    g = tf.cast(x > 0, tf.int64)
    w = tf.gather(self.half_width, g)
    col = lambda t: tf.reshape(t, [-1, 1])  # noqa: E731
    # every output the real models serve, strings and booleans included (signatures.py)
    return {"prediction": col(x), "group_id": col(g), "lower": col(x - w), "upper": col(x + w),
            "prediction_std": col(w / 1.645),
            "group_label": col(tf.gather(tf.constant(["x <= 0", "x > 0"]), g)),
            "is_fallback": col(tf.zeros_like(g, tf.bool))}

  @tf.function(input_signature=harness.EXAMPLES_SPEC)
  def transform_features(self, examples):
    return {"group_id": tf.cast(harness.parse_x(examples) > 0, tf.int64)}


def _data():
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, N).astype(np.float32)
  g = (x > 0).astype(int)
  e = rng.normal(0.0, 0.6, N).astype(np.float32)
  return x, x + e, g


def _evaluate(root: str, min_interval_coverage=None, baseline=False):
  """The GroupedEvaluator executor on the test split; with `baseline`, a second model with
  other widths is the baseline (both models' metrics are then keyed by model name)."""
  x, y, g = _data()
  model = harness.save_model(os.path.join(root, "model"), _Model(HALF_WIDTH))
  config = build_eval_config(label_key="y", rmse_upper_bound=10.0, overall_rmse_tolerance=10.0,
                             min_interval_coverage=min_interval_coverage)
  eval_uri, blessed = harness.evaluate(
      root, harness.write_test_split(root, ({"x": xi, "y": yi} for xi, yi in zip(x, y))), model,
      g, config, baseline=harness.save_model(os.path.join(root, "baseline"),
                                             _Model(BASELINE_HALF_WIDTH)) if baseline else None)
  return eval_uri, model.uri, blessed


def _expected(half_width=HALF_WIDTH):
  x, y, g = _data()
  w = np.asarray(half_width)[g]
  inside = np.abs(y - x) <= w
  per = {(): (inside.mean(), 2 * w.mean())}
  for k in (0, 1):
    per[(("group_id", str(k)),)] = (inside[g == k].mean(), 2 * w[g == k].mean())
  return per


@pytest.fixture(scope="module")
def report_only(tmp_path_factory):
  return _evaluate(str(tmp_path_factory.mktemp("interval_report_only")))


def _check_slices(metrics, model_name, half_width):
  want = _expected(half_width)
  for key, (coverage, width) in want.items():
    m = metrics[key][model_name]
    assert m[interval_metrics.COVERAGE] == pytest.approx(coverage, abs=1e-6), (model_name, key)
    assert m[interval_metrics.WIDTH] == pytest.approx(width, rel=1e-5), (model_name, key)


def test_coverage_and_width_per_slice_report_only(report_only):
  eval_uri, _, blessed = report_only
  assert _expected()[()][0] < 0.9              # below nominal, yet no threshold: still blessed
  assert blessed
  _check_slices(eval_results.load_slice_metrics(eval_uri), "", HALF_WIDTH)
  ok, failures = eval_results.load_failures(eval_uri)
  assert ok and not failures


def test_candidate_and_baseline_each_get_their_own_coverage(tmp_path):
  eval_uri, _, _ = _evaluate(str(tmp_path), baseline=True)
  metrics = eval_results.load_slice_metrics(eval_uri)
  _check_slices(metrics, "candidate", HALF_WIDTH)
  _check_slices(metrics, "baseline", BASELINE_HALF_WIDTH)


def test_min_interval_coverage_gates_the_blessing(tmp_path):
  coverage = _expected()[()][0]
  eval_uri, _, blessed = _evaluate(str(tmp_path), min_interval_coverage=coverage + 0.05)
  assert not blessed
  _, failures = eval_results.load_failures(eval_uri)
  assert [(f.slice, f.metric, f.kind) for f in failures] == [
      ((), interval_metrics.COVERAGE, "absolute")]
  assert failures[0].value == pytest.approx(coverage, abs=1e-6)


def _summary(eval_uri, model_uri, blessed):
  metrics = eval_results.load_slice_metrics(eval_uri)
  return RunSummary(evaluation_uri=eval_uri, blessed=blessed, pushed=False, pushed_path=None,
                    grouping_uri=None, groups=eval_results.group_rows(metrics, "group_id"),
                    overall=metrics.get((), {}), candidate_model_uri=model_uri, metrics=metrics,
                    gate=eval_results.load_gate(eval_uri))


def test_report_shows_coverage_group_effects_and_caterpillar(report_only, tmp_path):
  eval_uri, model_uri, blessed = report_only
  rows = group_effects.table(
      ["x <= 0", "x > 0"], np.array([120, 80]), np.array([-0.3, 0.4]), np.array([0.05, 0.1]),
      np.array([0.1, 0.2]), np.array([0.9, 0.8]), np.array([0.6, 0.6]), np.array([0.3, 0.6]))
  csv_path = group_effects.write(rows, os.path.join(model_uri, "group_effects"))
  s = _summary(eval_uri, model_uri, blessed)
  c = content_lib.build(s, "intervals")
  assert [r["group_label"] for r in c.group_effects] == ["x <= 0", "x > 0"]
  assert c.group_effects_csv == csv_path
  path = report_lib.write_report(s, str(tmp_path / "reports"), "intervals")
  html = open(path, encoding="utf-8").read()
  coverage = _expected()[()][0]
  assert "interval coverage" in html and f"{coverage:.4f}" in html
  assert "Group effects" in html and "x &lt;= 0" in html
  png = os.path.join(os.path.dirname(path), report_lib.CATERPILLAR_PNG)
  assert os.path.getsize(png) > 1000 and f'src="{report_lib.CATERPILLAR_PNG}"' in html
  # the console summary says where the table is and what the coverage was
  lines = "\n".join(describe(s))
  assert f"group-effects table: {csv_path}" in lines
  assert f"interval coverage {coverage:.3f}" in lines


def test_report_without_group_effects_says_so(report_only, tmp_path):
  eval_uri, _, blessed = report_only
  s = _summary(eval_uri, str(tmp_path / "no_model"), blessed)
  html = page.render(content_lib.build(s, "intervals"), "chart.png")
  assert "No group-effects table" in html
