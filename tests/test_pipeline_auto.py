"""The whole pipeline with `model.variant: auto` on a small Ames sample: the Trainer trains
every candidate, keeps the lowest eval-split RMSE, records the choice in the model artifact,
and the pushed model (whichever family won) serves through the pipeline's signatures."""
import io
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from models.grouped_regression import trainer
from pipeline import component_results, progress, run_log, run_summary
from tests import pipeline_fixtures as fx


@pytest.mark.slow
def test_pipeline_runs_with_auto_and_records_the_choice(tmp_path):
  cfg = fx.small_config(str(tmp_path), rows=600, overrides={"model.variant": "auto",
                                                                "model.numeric_bins": 8})
  console = io.StringIO()   # the local runner's console handler and log set-up, as `make run`
  with run_log.captured(str(tmp_path / "run.log"), verbose=False):
    handler = progress.Progress(console, fx.connection(cfg), component_results.DESCRIBERS)
    logging.getLogger().addHandler(handler)
    summary = fx.run(cfg)
  assert summary.pushed, "the auto model was not pushed"
  choice = summary.model_choice
  assert choice and choice["variant"] == "auto" and choice["split"] == "eval"
  assert set(choice["candidates"]) == {"multihead/zscore", "multihead/piecewise", "boosted"}
  rmse = {k: v["eval_rmse"] for k, v in choice["candidates"].items()}
  assert all(np.isfinite(v) for v in rmse.values()), rmse
  assert choice["chosen"] == min(rmse, key=rmse.get)
  assert trainer.read_choice(summary.pushed_path) == choice     # travels with the SavedModel
  assert any(line.startswith("model variant: auto -> ") for line in run_summary.describe(summary))
  # the Trainer's console line names the kept candidate and every candidate's eval RMSE
  (line,) = [l for l in console.getvalue().splitlines() if "GroupedTrainer" in l and "finished" in l]
  assert f"kept {choice['chosen']}, eval RMSE {rmse[choice['chosen']]:.4f}" in line, line
  for name, r in rmse.items():
    assert f"{name} {r:.4f}" in line, (name, line)
  assert "epochs" in line, line
  if choice["chosen"] == "boosted":
    import tensorflow_decision_forests  # noqa: F401  pylint: disable=g-import-not-at-top
  loaded = tf.saved_model.load(summary.pushed_path)
  assert {"serving_default", "serving_raw", "transform_features"} <= set(loaded.signatures)
  assert os.path.exists(os.path.join(summary.pushed_path, trainer.CHOICE_FILE))


@pytest.mark.slow
def test_multiprocess_evaluator_loads_a_boosted_model(tmp_path):
  """Beam workers are fresh processes that must register TF-DF ops before loading the model
  (TFMA's model_util imports TF-DF there). Only the Evaluator runs multi-process (the Grouping
  executor's multi-process run has its own test)."""
  cfg = fx.small_config(str(tmp_path), rows=400, overrides={"model.variant": "boosted",
                                                           "evaluation.min_group_examples": 5})
  summary = fx.run(cfg, node_beam_args={"Evaluator": [
      "--direct_running_mode=multi_processing", "--direct_num_workers=2"]})
  assert summary.model_choice["chosen"] == "boosted"
  assert summary.overall and summary.groups, "no evaluation metrics"
  for gid, row in summary.groups.items():
    assert row["examples"] > 0 and np.isfinite(row["rmse"]), (gid, row)
