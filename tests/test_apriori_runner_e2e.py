"""One small a-priori run through the runner's command line, and what users then rely on.

`python -m pipeline.local_runner --config configs/diamonds.yaml --set ...` (a subprocess, as
`make run` starts it) on an 800-row sample; then, on that run's outputs: a clarity grade never
seen in training goes to the fallback group in the pushed model, the blessing artifact records
the gated and ungated groups, `python -m pipeline.report` re-renders the report from MLMD, and a
corrupted data drop, validated against the schema the first run inferred (the README's
workflow), stops before Grouping with an error naming the split, the column and the anomaly.
"""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from tfx import v1 as tfx

from components.anomaly_gate import DataAnomalyError
from components.grouped_evaluator import DEFAULT_SPLITS
from components.grouping import store as grouping_store
from data import prepare
from pipeline import run_summary, timings
from pipeline.config import REPO_ROOT, load_config
from pipeline.from_config import pipeline_args
from pipeline.local_runner import parse_overrides
from pipeline.pipeline import create_pipeline

CONFIG = "configs/diamonds.yaml"   # a priori: one group per clarity grade
UNSEEN = "Z9-never-seen"
# one candidate without bins, as in tests/pipeline_fixtures.FAST: `auto` has its own e2e test
SMALL = {"dataset.sample_rows": 800, "model.variant": "multihead", "model.numeric_bins": 0,
         "model.epochs": 4, "model.patience": 2, "beam.args": []}


def _connection(cfg):
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)


def _set_args(overrides):
  return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in overrides.items()]


def _env():
  return dict(os.environ, PYTHONPATH=REPO_ROOT, TF_USE_LEGACY_KERAS="1")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  tmp = str(tmp_path_factory.mktemp("apriori"))
  overrides = {**SMALL, "dataset.csv_dir": os.path.join(tmp, "data"),
               "outputs.root": os.path.join(tmp, "out")}
  cfg = load_config(CONFIG, overrides=overrides)
  prepare.prepare(cfg)
  proc = subprocess.run([sys.executable, "-m", "pipeline.local_runner", "--config", CONFIG,
                         "--set", *_set_args(overrides)], cwd=REPO_ROOT, env=_env(),
                        capture_output=True, text=True, timeout=1800, check=False)
  with open(os.path.join(tmp, "local_runner.log"), "w") as f:
    f.write(proc.stdout + proc.stderr)
  return dict(tmp=tmp, cfg=cfg, overrides=overrides, proc=proc)


@pytest.fixture(scope="module")
def summary(run):
  assert run["proc"].returncode == 0, run["proc"].stderr[-3000:]
  return run_summary.summarize(_connection(run["cfg"]))


def test_parse_overrides_reads_yaml_values():
  assert parse_overrides(["model.epochs=4", "grouping.k=[4, 12]", "beam.args=[]",
                          "outputs.root=out/x=1", "model.head_refit=false"]) == {
      "model.epochs": 4, "grouping.k": [4, 12], "beam.args": [], "outputs.root": "out/x=1",
      "model.head_refit": False}
  assert parse_overrides(None) == {}


@pytest.mark.slow
def test_runner_cli_runs_the_pipeline_and_pushes_a_model(run, summary):
  cfg = run["cfg"]
  assert summary.blessed is True and summary.pushed, summary
  assert summary.pushed_path.startswith(cfg.serving_base_dir)   # outputs.root came from --set
  assert os.path.exists(os.path.join(summary.pushed_path, "saved_model.pb"))
  assert summary.report_path is None   # set in the runner's process; checked on disk below
  assert glob.glob(os.path.join(cfg.report_dir, "**", "*.html"), recursive=True)


def _examples(rows, columns):
  out = []
  for row in rows:
    ex = tf.train.Example()
    for name in columns:
      v = row[name]
      if isinstance(v, str):
        ex.features.feature[name].bytes_list.value.append(v.encode())
      else:
        ex.features.feature[name].float_list.value.append(float(v))
    out.append(ex.SerializeToString())
  return out


@pytest.mark.slow
def test_unseen_category_goes_to_the_fallback_group_in_the_pushed_model(run, summary):
  cfg = run["cfg"]
  column = cfg.grouping.column
  grouping = grouping_store.load(summary.grouping_uri)
  assert grouping.fallback_group == len(grouping.vocabulary)
  frame = pd.read_csv(os.path.join(cfg.csv_dir, f"{cfg.name}.csv")).head(40)
  rows = frame.to_dict("records")
  columns = cfg.feature_columns + [column]
  model = tf.saved_model.load(summary.pushed_path)
  seen = model.signatures["serving_default"](examples=tf.constant(_examples(rows, columns)))
  expected = [grouping.vocabulary.index(r[column]) if r[column] in grouping.vocabulary
              else grouping.fallback_group for r in rows]
  np.testing.assert_array_equal(seen["group_id"].numpy().reshape(-1), expected)
  assert len(set(expected)) > 2   # the sample really spans several groups

  unseen_rows = [dict(r, **{column: UNSEEN}) for r in rows]
  out = model.signatures["serving_default"](examples=tf.constant(_examples(unseen_rows, columns)))
  assert set(out["group_id"].numpy().reshape(-1).tolist()) == {grouping.fallback_group}
  pred = out["prediction"].numpy().reshape(-1)
  assert np.isfinite(pred).all()
  # the fallback head answers: same rows, other group -> other predictions where groups differ
  own = seen["prediction"].numpy().reshape(-1)
  moved = np.array(expected) != grouping.fallback_group
  assert np.abs(pred[moved] - own[moved]).max() > 1e-4
  # the plain-tensor signature REST callers use assigns the same way
  raw = model.signatures["serving_raw"]
  specs = raw.structured_input_signature[1]
  feed = {k: tf.constant([r[k] for r in unseen_rows[:5]], dtype=specs[k].dtype)
          for k in specs}
  feed = {k: tf.reshape(v, [-1] + [1] * (len(specs[k].shape) - 1)) for k, v in feed.items()}
  raw_out = raw(**feed)
  assert set(raw_out["group_id"].numpy().reshape(-1).tolist()) == {grouping.fallback_group}


@pytest.mark.slow
def test_blessing_artifact_records_gated_and_ungated_groups(run, summary):
  cfg = run["cfg"]
  store = metadata_store.MetadataStore(_connection(cfg))
  (blessing,) = store.get_artifacts_by_type("ModelBlessing")
  props = blessing.custom_properties
  gated = json.loads(props["gated_groups"].string_value)
  ungated = json.loads(props["ungated_groups"].string_value)
  counts = grouping_store.load_summary(summary.grouping_uri)["counts"]
  per_group = np.sum([counts[s] for s in DEFAULT_SPLITS], axis=0)
  minimum = cfg.evaluation.min_group_examples
  assert gated == [g for g, n in enumerate(per_group) if n >= minimum]
  assert ungated == [g for g, n in enumerate(per_group) if n < minimum]
  assert gated and ungated, (per_group.tolist(), minimum)   # both kinds were exercised


@pytest.mark.slow
def test_report_cli_rerenders_the_report_from_mlmd(run, summary):
  cfg = run["cfg"]
  for page in glob.glob(os.path.join(cfg.report_dir, "**", "*.html"), recursive=True):
    os.remove(page)
  proc = subprocess.run([sys.executable, "-m", "pipeline.report", "--config", CONFIG,
                         "--set", *_set_args(run["overrides"])], cwd=REPO_ROOT, env=_env(),
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  path = proc.stdout.strip().splitlines()[-1]
  assert os.path.isfile(path) and path.startswith(cfg.report_dir), proc.stdout
  with open(path, encoding="utf-8") as f:
    page = f.read()
  assert "BLESSED" in page
  for g in summary.groups:
    assert f"<td class=l>group {g}</td>" in page or f"group {g}" in page, g


@pytest.mark.slow
def test_corrupted_drop_stops_before_grouping_naming_split_column_and_anomaly(run, summary):
  """Runs last: a second run in the same root, on a data drop with text in a numeric column."""
  cfg, tmp = run["cfg"], run["tmp"]
  (schema,) = glob.glob(os.path.join(cfg.pipeline_root, "SchemaGen", "schema", "*",
                                     "schema.pbtxt"))
  frame = pd.read_csv(os.path.join(cfg.csv_dir, f"{cfg.name}.csv"))
  frame["carat"] = frame["carat"].astype(object)
  frame.loc[::5, "carat"] = "n/a"
  bad_dir = os.path.join(tmp, "bad_drop")
  os.makedirs(bad_dir)
  frame.to_csv(os.path.join(bad_dir, f"{cfg.name}.csv"), index=False)
  bad = load_config(CONFIG, overrides={**run["overrides"], "dataset.csv_dir": bad_dir,
                                       "dataset.schema": schema})
  connection = _connection(bad)
  with pytest.raises(DataAnomalyError) as err:
    tfx.orchestration.LocalDagRunner().run(
        create_pipeline(**pipeline_args(bad), metadata_connection_config=connection))
  message = str(err.value)
  for split in ("train", "eval"):
    assert f"split '{split}': column 'carat': " in message, message
  assert "Unexpected data type" in message, message
  # nothing after the gate ran again; the served model is still the first run's
  ran = [(name, state) for _, name, state, _ in timings.component_seconds(connection)]
  assert ran.count(("ExampleValidator", "COMPLETE")) == 2, ran
  assert ran.count(("GroupedTrainer", "COMPLETE")) == 1, ran
  assert ran.count(("GuardedPusher", "COMPLETE")) == 1, ran
  assert sorted(os.listdir(cfg.serving_base_dir)) == [os.path.basename(summary.pushed_path)]
