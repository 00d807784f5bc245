"""The whole pipeline with LocalDagRunner on a small Ames sample: MLMD, the three splits and
who sees which, pushed model, grouping agreement between the serving graph and the grouping
artifact on every test row, per-group test slices, the anomaly stop and the too-few-test-rows stop."""
import collections
import dataclasses
import glob
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from ml_metadata.metadata_store import metadata_store
from tfx.types import artifact_utils

from components.anomaly_gate import DataAnomalyError
from components.grouping import store as grouping_store
from pipeline import timings
from tests import pipeline_fixtures as fx

COMPONENTS = ["CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
              "Grouping", "GroupedTransform", "GroupedTrainer", "GroupedEvaluator", "GuardedPusher"]


def _executions(cfg):
  return collections.Counter((name, state)
                             for _, name, state, _ in timings.component_seconds(fx.connection(cfg)))


def _input_examples(cfg, component: str):
  """(split_names, uri) of every Examples artifact the latest execution of the component type
  `component` (class name) read."""
  mlmd = metadata_store.MetadataStore(fx.connection(cfg))
  exec_types = {t.id: t.name.split(".")[-1] for t in mlmd.get_execution_types()}
  run = [e for e in mlmd.get_executions() if exec_types[e.type_id] == component]
  assert run, f"no {component} execution in MLMD"
  latest = max(run, key=lambda e: e.id)
  ids = [ev.artifact_id for ev in mlmd.get_events_by_execution_ids([latest.id])
         if ev.type == ev.INPUT]
  types = {t.id: t.name for t in mlmd.get_artifact_types()}
  return [(artifact_utils.decode_split_names(a.properties["split_names"].string_value), a.uri)
          for a in mlmd.get_artifacts_by_id(ids) if types[a.type_id] == "Examples"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  cfg = fx.small_config(str(tmp_path_factory.mktemp("e2e")), rows=800)
  return cfg, fx.run(cfg)


@pytest.mark.slow
def test_every_component_executed_once(finished_run):
  cfg, summary = finished_run
  execs = _executions(cfg)
  for name in COMPONENTS:
    assert execs[(name, "COMPLETE")] == 1, (name, execs)
  assert not [k for k in execs if k[1] == "FAILED"]
  assert summary.blessed is True and summary.pushed


@pytest.mark.slow
def test_example_gen_writes_three_splits_sized_by_the_config(finished_run):
  cfg, summary = finished_run
  sizes = {s: len(fx.latest_split_examples(cfg, s)) for s in ("train", "eval", "test")}
  assert all(sizes.values()), sizes
  assert sum(sizes.values()) == 800
  for split, n in sizes.items():   # 70/15/15 by hash: loose bounds on 800 rows
    share = cfg.dataset.split_sizes[split] / 100
    assert abs(n / 800 - share) < 0.06, (split, n, sizes)
  counts = grouping_store.load_summary(summary.grouping_uri)["counts"]
  assert {s: sum(counts[s]) for s in sizes} == sizes


@pytest.mark.slow
def test_trainer_never_receives_a_test_file(finished_run):
  cfg, _ = finished_run
  inputs = _input_examples(cfg, "GroupedTrainer")
  assert inputs, "the Trainer read no Examples artifact"
  for splits, uri in inputs:
    assert "test" not in splits, (splits, uri)
    on_disk = [d for d in os.listdir(uri) if d.startswith("Split-")]
    assert sorted(on_disk) == ["Split-eval", "Split-train"], (uri, on_disk)
    assert not glob.glob(os.path.join(uri, "**", "*test*"), recursive=True)


@pytest.mark.slow
def test_evaluator_judges_on_the_test_split_only(finished_run):
  cfg, summary = finished_run
  (splits, _), = _input_examples(cfg, "GroupedEvaluator")
  assert "test" in splits   # ExampleGen's raw examples; example_splits picks test
  n_test = len(fx.latest_split_examples(cfg, "test"))
  overall = summary.overall[next(iter(summary.overall))]
  assert overall["example_count"] == n_test
  counts = grouping_store.load_summary(summary.grouping_uri)["counts"]
  per_group = [summary.groups.get(g, {}).get("examples") or 0 for g in range(len(counts["test"]))]
  assert per_group == counts["test"] and per_group != counts["eval"]   # test rows, not eval rows
  assert summary.gate["splits"] == ["test"] and summary.gate["eval_counts"] == counts["test"]


@pytest.mark.slow
def test_pushed_model_predicts_and_assigns_groups_like_the_artifact(finished_run):
  cfg, summary = finished_run
  assert summary.pushed_path.startswith(cfg.serving_base_dir)
  assert os.path.exists(os.path.join(summary.pushed_path, "saved_model.pb"))
  model = tf.saved_model.load(summary.pushed_path)
  records = fx.latest_split_examples(cfg, "test")
  out = model.signatures["serving_default"](examples=tf.constant(records))
  pred = out["prediction"].numpy().reshape(-1)
  assert pred.shape == (len(records),) and np.isfinite(pred).all()
  # every test row: the serving graph's group id == the artifact's NumPy assignment
  np.testing.assert_array_equal(out["group_id"].numpy().reshape(-1),
                                fx.assigned_groups(summary.grouping_uri, records))
  # predictions are in label units (log price) and beat the best constant (the test mean)
  labels = np.array([tf.train.Example.FromString(r).features.feature[cfg.dataset.label]
                     .float_list.value[0] for r in records])
  rmse = np.sqrt(np.mean((pred - labels) ** 2))
  assert rmse < 0.7 * np.std(labels), (rmse, np.std(labels))


@pytest.mark.slow
def test_per_group_results_cover_every_group(finished_run):
  _, summary = finished_run
  test_counts = grouping_store.load_summary(summary.grouping_uri)["counts"]["test"]
  assert len(test_counts) == grouping_store.load_summary(summary.grouping_uri)["num_groups"]
  present = {g for g, n in enumerate(test_counts) if n}
  assert len(present) >= 2
  assert set(summary.groups) == present
  for gid, row in summary.groups.items():
    assert row["examples"] == test_counts[gid] and np.isfinite(row["rmse"]), (gid, row)


@pytest.mark.slow
def test_second_run_reuses_cached_executions(finished_run):
  cfg, _ = finished_run
  fx.run(cfg)
  execs = _executions(cfg)
  for name in ["CsvExampleGen", "StatisticsGen", "Grouping", "GroupedTransform", "GroupedTrainer"]:
    assert execs[(name, "CACHED")] == 1, (name, execs)


@pytest.mark.slow
def test_a_code_change_reruns_the_nodes_that_run_that_code(finished_run, monkeypatch):
  """An edit to the model code (run_fn's module and what it imports) gives the Trainer a new
  code_version: the Trainer and everything downstream run again, upstream stays cached. Here the
  edit is simulated by the fingerprint; tests/test_code_version.py edits real files."""
  from components import code_version  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import RUN_FN  # pylint: disable=g-import-not-at-top
  cfg, _ = finished_run
  before = _executions(cfg)
  real = code_version.of_function
  monkeypatch.setattr(code_version, "of_function",
                      lambda fn: real(fn) + ("-edited" if fn == RUN_FN else ""))
  fx.run(cfg)
  new = _executions(cfg) - before
  for name in ["CsvExampleGen", "StatisticsGen", "Grouping", "GroupedTransform"]:
    assert new[(name, "CACHED")] == 1 and not new[(name, "COMPLETE")], (name, new)
  for name in ["GroupedTrainer", "GroupedEvaluator"]:
    assert new[(name, "COMPLETE")] == 1, (name, new)


@pytest.mark.slow
def test_wrong_type_column_stops_before_training(tmp_path):
  cfg = fx.small_config(str(tmp_path), rows=400)
  csv = glob.glob(os.path.join(cfg.csv_dir, "*.csv"))[0]
  df = pd.read_csv(csv)
  df["Gr_Liv_Area"] = df["Gr_Liv_Area"].astype(object)
  df.loc[::7, "Gr_Liv_Area"] = "unknown"
  df.to_csv(csv, index=False)
  with pytest.raises(DataAnomalyError, match="Gr_Liv_Area"):
    fx.run(cfg)
  execs = _executions(cfg)
  assert execs[("ExampleValidator", "COMPLETE")] == 1
  assert not any(name in ("GroupedTransform", "GroupedTrainer", "GuardedPusher")
                 for name, _ in execs)
  assert not glob.glob(os.path.join(cfg.serving_base_dir, "*"))


@pytest.mark.slow
def test_dev_server_serves_the_pushed_model_over_grpc_and_rest(finished_run):
  """The real tensorflow-serving-api stubs against the model the pipeline pushed."""
  import grpc  # pylint: disable=g-import-not-at-top
  import requests  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  from serving.launcher import start_server  # pylint: disable=g-import-not-at-top

  cfg, summary = finished_run
  records = fx.latest_split_examples(cfg, "test")[:20]
  local = tf.saved_model.load(summary.pushed_path).signatures["serving_default"](
      examples=tf.constant(records))
  with start_server(cfg.serving_base_dir, cfg.serving.model_name) as server:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(server.grpc_target))
    req = predict_pb2.PredictRequest()
    req.model_spec.name = cfg.serving.model_name
    req.model_spec.signature_name = "serving_default"
    req.inputs["examples"].CopyFrom(tf.make_tensor_proto(records, dtype=tf.string))
    resp = stub.Predict(req, timeout=30)
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["prediction"]),
                               local["prediction"].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(tf.make_ndarray(resp.outputs["group_id"]),
                                  local["group_id"].numpy())
    served = max(int(v) for v in os.listdir(cfg.serving_base_dir) if v.isdigit())  # the latest
    assert resp.model_spec.version.value == served

    # REST callers send plain numbers/strings to serving_raw
    raw = tf.train.Example.FromString(records[0]).features.feature
    instance = {}
    for name in cfg.feature_columns:
      f = raw[name]
      kind = f.WhichOneof("kind")
      v = getattr(f, kind).value[0]
      instance[name] = v.decode() if isinstance(v, bytes) else v
    r = requests.post(f"{server.rest_url}/v1/models/{cfg.serving.model_name}:predict",
                      json={"signature_name": "serving_raw", "instances": [instance]}, timeout=30)
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    assert abs(pred["prediction"][0] - float(local["prediction"].numpy()[0, 0])) < 1e-4
    assert pred["group_id"][0] == int(local["group_id"].numpy()[0, 0])


@pytest.mark.slow
def test_too_few_test_rows_for_the_gate_stop_before_blessing(finished_run):
  """Last in the module: the finished run again with a gate no group can reach. Upstream comes
  from the cache; the Evaluator fails naming the split and the counts; nothing is pushed."""
  cfg, _ = finished_run
  strict = dataclasses.replace(
      cfg, evaluation=dataclasses.replace(cfg.evaluation, min_group_examples=10_000))
  pushed_before = sorted(glob.glob(os.path.join(cfg.serving_base_dir, "*")))
  pushers_before = sum(n for (name, _), n in _executions(cfg).items() if name == "GuardedPusher")
  with pytest.raises(Exception, match=r"split test has \d+ rows.*min_group_examples=10000"):
    fx.run(strict)
  execs = _executions(cfg)
  assert execs[("GroupedEvaluator", "FAILED")] == 1, execs
  assert execs[("GroupedTrainer", "CACHED")] >= 1, execs      # the gate change retrains nothing
  pushers = sum(n for (name, _), n in execs.items() if name == "GuardedPusher")
  assert pushers == pushers_before, execs
  assert sorted(glob.glob(os.path.join(cfg.serving_base_dir, "*"))) == pushed_before
