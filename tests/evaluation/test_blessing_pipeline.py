"""Blessing and pushing with the real GroupedEvaluator (TFMA) and Pusher, four runs in one
pipeline root so each candidate is judged against the latest blessed model:

  A  weak model (1 epoch, no refit), honest data  -> first run: blessed on the absolute bound, pushed
  B  good model, one group's TRAINING labels shifted (eval and test rows honest), judged with a
     loose overall tolerance   -> passes every overall check, clearly worse on that group:
                                  NOT blessed, NOT pushed (the per-group gate alone stops it)
  C  good model, honest data            -> healthy: blessed against A and pushed
  D  weak model (another seed)          -> worse overall than C: NOT blessed, NOT pushed

B re-runs every component (new CSV); C and D re-use A's upstream executions from the cache and
re-run only Trainer, Evaluator and Pusher. Every verdict is on the `test` split.
"""
from __future__ import annotations

import glob
import math
import os

import pytest
import tensorflow_model_analysis as tfma

from components.grouping import store as grouping_store
from models.grouped_regression import features as fk
from pipeline import run_summary
from pipeline.eval_config import METRIC_NAMES, RMSE
from pipeline.report import write_report
from tests import pipeline_fixtures as fx
from tests.evaluation import corrupt_data

ROWS = 800
# log-price units added to one group's training labels in run B. The eval split is honest, so the
# choices made on it (early stopping, the EB refit's pooling) pass only ~20% of a shift through;
# 2.5 leaves that group's test RMSE well above the tolerance (0.6 passed ~0.13 through, and
# "worse on the group" then hung on noise). B's overall tolerance is loose so that only the
# per-group gate can stop it: overall-vs-group trade-offs are not what this run tests.
SHIFT = 2.5
B_EVAL = {"evaluation.overall_rmse_tolerance": 1.0}
BASE = {"evaluation.rmse_upper_bound": 0.6, "evaluation.overall_rmse_tolerance": 0.05,
        "evaluation.group_rmse_tolerance": 0.15, "evaluation.min_group_examples": 15}
# weak = one epoch of SGD and no closed-form refit of the group deltas (the refit alone would
# make a one-epoch model competitive, and D must be clearly worse than C)
WEAK = {"model.epochs": 1, "model.head_refit": False}
GOOD = {"model.epochs": 8, "model.patience": 3}


def _run(cfg):
  summary = fx.run(cfg)
  write_report(summary, cfg.report_dir, cfg.name)
  return summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  tmp = str(tmp_path_factory.mktemp("blessing"))
  honest_weak = fx.small_config(tmp, rows=ROWS, overrides={**BASE, **WEAK})
  a = _run(honest_weak)
  # shift the gated group with the fewest test rows: a clear regression there, small overall
  counts = a.gate["eval_counts"]
  target = min(a.gate["gated"], key=lambda g: counts[g])
  bad_dir = os.path.join(tmp, "data_shifted")
  shifted = corrupt_data.write_shifted_copy(honest_weak, bad_dir, group=target, shift=SHIFT)
  honest_eval = {s: corrupt_data.split_records(honest_weak, s) for s in ("eval", "test")}
  bad_cfg = fx.small_config(tmp, rows=ROWS,
                            overrides={**BASE, **B_EVAL, **GOOD, "dataset.csv_dir": bad_dir})
  b = _run(bad_cfg)
  c = _run(fx.small_config(tmp, rows=ROWS, overrides={**BASE, **GOOD}))
  d = _run(fx.small_config(tmp, rows=ROWS, overrides={**BASE, **WEAK, "model.seed": 8}))
  return dict(cfg=honest_weak, bad_cfg=bad_cfg, a=a, b=b, c=c, d=d, target=target,
              shifted=shifted, honest_eval=honest_eval)


def _overall_rmse(s, model):
  return s.overall[model][RMSE]


def _failed_slices(s):
  return {(f.slice, f.metric, f.kind) for f in s.failures}


def _group_slice(g):
  return ((fk.GROUP_KEY, str(g)),)


@pytest.mark.slow
def test_first_run_is_blessed_on_the_absolute_bound_and_pushed(runs):
  a = runs["a"]
  assert a.baseline_model_uri is None
  assert a.blessed is True and a.pushed and not a.failures
  assert _overall_rmse(a, "") <= BASE["evaluation.rmse_upper_bound"]
  assert os.path.exists(os.path.join(a.pushed_path, "saved_model.pb"))


@pytest.mark.slow
def test_every_metric_is_computed_on_every_slice(runs):
  c, cfg = runs["c"], runs["cfg"]
  counts = grouping_store.load_summary(c.grouping_uri)["counts"]["test"]
  assert c.gate["splits"] == ["test"] and c.gate["eval_counts"] == counts
  group_slices = {k for k in c.metrics if k and k[0][0] == fk.GROUP_KEY}
  assert group_slices == {_group_slice(g) for g, n in enumerate(counts) if n}
  extra = {k for k in c.metrics if k and k[0][0] in cfg.evaluation.extra_slices}
  assert len(extra) > 1, "no extra-slice (a-priori column) slices in the evaluation"
  for key, models in c.metrics.items():
    assert set(models) == {"candidate", "baseline"}, key
    for model, m in models.items():
      assert set(METRIC_NAMES) <= set(m), (key, model, sorted(m))
      assert math.isclose(m[RMSE] ** 2, m["mean_squared_error"], rel_tol=1e-4)
      assert math.isclose(m["calibration"], m["mean_prediction"] / m["mean_label"], rel_tol=1e-4)
  for g, n in enumerate(counts):   # the gate's counts are the rows TFMA sliced
    if n:
      assert c.metrics[_group_slice(g)]["candidate"]["example_count"] == n


@pytest.mark.slow
def test_passing_overall_but_worse_on_one_group_is_not_blessed_nor_pushed(runs):
  b, target = runs["b"], runs["target"]
  assert runs["shifted"] > 20
  # the eval and test rows are the honest ones: identical to run A's
  for split, records in runs["honest_eval"].items():
    assert corrupt_data.split_records(runs["bad_cfg"], split) == records, split
  assert b.baseline_model_uri == runs["a"].candidate_model_uri
  assert b.blessed is False and not b.pushed
  assert _overall_rmse(b, "candidate") <= BASE["evaluation.rmse_upper_bound"]
  failed = _failed_slices(b)
  assert (_group_slice(target), RMSE, "relative") in failed
  assert all(key and key[0][0] == fk.GROUP_KEY for key, _, _ in failed), failed  # overall passed
  rows = b.groups[target]
  assert rows["rmse"] > (1 + BASE["evaluation.group_rmse_tolerance"]) * rows["baseline_rmse"]
  with open(b.report_path, encoding="utf-8") as f:
    page = f.read()
  assert f"group_id = {target}: {RMSE} worsened" in page
  assert "<tr class='fail'><td class=l>group %d</td>" % target in page
  assert "NOT blessed" in page and "not pushed" in page


@pytest.mark.slow
def test_healthy_candidate_is_blessed_and_pushed(runs):
  a, c = runs["a"], runs["c"]
  assert c.baseline_model_uri == a.candidate_model_uri   # B was not blessed: A is the baseline
  assert c.blessed is True and c.pushed and not c.failures
  assert c.pushed_path != a.pushed_path
  assert os.path.exists(os.path.join(c.pushed_path, "saved_model.pb"))


@pytest.mark.slow
def test_worse_overall_is_not_blessed_and_small_groups_do_not_gate(runs):
  c, d = runs["c"], runs["d"]
  assert d.baseline_model_uri == c.candidate_model_uri
  assert d.blessed is False and not d.pushed
  tol = BASE["evaluation.overall_rmse_tolerance"]
  assert _overall_rmse(d, "candidate") > (1 + tol) * _overall_rmse(d, "baseline")
  assert ((), RMSE, "relative") in _failed_slices(d)
  # groups under min_group_examples are reported but never fail the run, however much worse
  small = d.gate["not_gated"]
  counts = d.gate["eval_counts"]
  assert small and all(counts[g] < BASE["evaluation.min_group_examples"] for g in small)
  failed_groups = {k for k, _, _ in _failed_slices(d) if k}
  gtol = BASE["evaluation.group_rmse_tolerance"]
  worse_small = [g for g in small if counts[g] and
                 d.groups[g]["rmse"] > (1 + gtol) * d.groups[g]["baseline_rmse"]]
  assert worse_small, "no small group got worse: the rule was not exercised"
  assert not failed_groups & {_group_slice(g) for g in small}
  assert failed_groups <= {_group_slice(g) for g in d.gate["gated"]}


@pytest.mark.slow
def test_only_blessed_models_reach_the_serving_directory(runs):
  cfg, a, c = runs["cfg"], runs["a"], runs["c"]
  versions = sorted(glob.glob(os.path.join(cfg.serving_base_dir, "*")))
  assert versions == sorted([a.pushed_path, c.pushed_path])
  assert runs["b"].pushed_path is None and runs["d"].pushed_path is None


@pytest.mark.slow
def test_each_run_has_a_report_listing_every_group(runs):
  for name in "abcd":
    s = runs[name]
    assert s.report_path and os.path.exists(s.report_path), name
    png = os.path.join(os.path.dirname(s.report_path), "rmse_by_group.png")
    with open(png, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(s.report_path, encoding="utf-8") as f:
      page = f.read()
    num_groups = grouping_store.load_summary(s.grouping_uri)["num_groups"]
    for g in range(num_groups):
      assert f"<td class=l>group {g}</td>" in page, (name, g)
    assert ("BLESSED" if s.blessed else "NOT blessed") in page
    lines = run_summary.describe(s)
    assert any(line.startswith("report: ") for line in lines)


@pytest.mark.slow
def test_eval_result_opens_in_tfma_for_notebook_users(runs):
  c = runs["c"]
  result = tfma.load_eval_result(c.evaluation_uri)
  # TFMA keeps the int64 group id as an int in the slice key; eval_results renders it as text
  assert {tuple((col, str(v)) for col, v in k) for k, _ in result.slicing_metrics} == set(c.metrics)
  viewer = tfma.view.render_slicing_metrics(result, slicing_column=fk.GROUP_KEY)
  assert len(viewer.data) == len(c.groups)
