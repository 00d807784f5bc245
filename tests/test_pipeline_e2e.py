"""The whole pipeline with LocalDagRunner on a small Ames sample: MLMD, pushed model, grouping
agreement between the serving graph and the grouping component, and the anomaly stop."""
import collections
import glob
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from components.anomaly_gate import DataAnomalyError
from pipeline import timings
from tests import pipeline_fixtures as fx

COMPONENTS = ["CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
              "Grouping", "GroupedTransform", "GroupedTrainer", "GroupedEvaluator", "Pusher"]


def _executions(cfg):
  return collections.Counter((name, state)
                             for _, name, state, _ in timings.component_seconds(fx.connection(cfg)))


def _annotated_eval_records(summary_grouping_uri: str):
  # annotated examples live beside the grouping artifact: <root>/Grouping/annotated_examples/<id>
  grouping_dir = os.path.dirname(os.path.dirname(summary_grouping_uri))
  files = glob.glob(os.path.join(grouping_dir, "annotated_examples", "*", "Split-eval", "*"))
  assert files, f"no annotated eval examples under {grouping_dir}"
  return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


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
def test_pushed_model_predicts_and_assigns_groups_like_the_component(finished_run):
  cfg, summary = finished_run
  assert summary.pushed_path.startswith(cfg.serving_base_dir)
  assert os.path.exists(os.path.join(summary.pushed_path, "saved_model.pb"))
  model = tf.saved_model.load(summary.pushed_path)
  records = _annotated_eval_records(summary.grouping_uri)
  out = model.signatures["serving_default"](examples=tf.constant(records))
  pred = out["prediction"].numpy().reshape(-1)
  assert pred.shape == (len(records),) and np.isfinite(pred).all()
  component_ids = [tf.train.Example.FromString(r).features.feature["group_id"].int64_list.value[0]
                   for r in records]
  np.testing.assert_array_equal(out["group_id"].numpy().reshape(-1), component_ids)
  # predictions are in label units (log price), not standardised
  labels = [tf.train.Example.FromString(r).features.feature[cfg.dataset.label].float_list.value[0]
            for r in records]
  assert np.sqrt(np.mean((pred - np.array(labels)) ** 2)) < 0.5


@pytest.mark.slow
def test_per_group_results_cover_every_group(finished_run):
  _, summary = finished_run
  assert summary.groups, "no per-group slices in the evaluation"
  for gid, row in summary.groups.items():
    assert row["examples"] > 0 and np.isfinite(row["rmse"]), (gid, row)


@pytest.mark.slow
def test_second_run_reuses_cached_executions(finished_run):
  cfg, _ = finished_run
  fx.run(cfg)
  execs = _executions(cfg)
  for name in ["CsvExampleGen", "StatisticsGen", "Grouping", "GroupedTransform", "GroupedTrainer"]:
    assert execs[(name, "CACHED")] == 1, (name, execs)


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
  assert not any(name in ("GroupedTransform", "GroupedTrainer", "Pusher") for name, _ in execs)
  assert not glob.glob(os.path.join(cfg.serving_base_dir, "*"))


@pytest.mark.slow
def test_dev_server_serves_the_pushed_model_over_grpc_and_rest(finished_run):
  """The real tensorflow-serving-api stubs against the model the pipeline pushed."""
  import grpc  # pylint: disable=g-import-not-at-top
  import requests  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  from serving.launcher import start_server  # pylint: disable=g-import-not-at-top

  cfg, summary = finished_run
  records = _annotated_eval_records(summary.grouping_uri)[:20]
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
