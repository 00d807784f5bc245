"""The boosted variant (YDF trunk + pooled group heads): trained by run_fn on a real Transform
output, exported as one SavedModel with the pipeline's three signatures, and served by the dev
server with the same numbers in-process, over gRPC and over REST."""
import base64
import json
import os

import numpy as np
import pytest
import requests
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_decision_forests  # noqa: F401  registers the ops the reloaded model runs
from tensorflow_transform.tf_metadata import schema_utils
from tfx import v1 as tfx

from models.grouped_regression import boosted
from models.grouped_regression import features as fk
from models.grouped_regression import trainer
from serving.client.grpc_client import GrpcClient
from serving.launcher import start_server
from tests.models import transform_sample
from tests.serving.helpers import SERVER_ARGS


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  sample = transform_sample.build(str(tmp_path_factory.mktemp("tft")), rows=300)
  root = tmp_path_factory.mktemp("boosted")
  fn_args = tfx.components.FnArgs(
      train_files=sample.train_files, eval_files=sample.eval_files,
      transform_output=sample.transform_output, data_accessor=sample.data_accessor(),
      serving_model_dir=str(root / "base" / "1"), model_run_dir=str(root / "logs"),
      custom_config=sample.custom_config(variant="boosted"))
  trainer.run_fn(fn_args)
  spec = dict(schema_utils.schema_as_feature_spec(sample.schema).feature_spec)
  spec.pop(sample.cfg.dataset.label)
  rows = sample.frame.iloc[sample.n_train:].head(20).to_dict("records")
  examples = [transform_sample.to_example(r, spec) for r in rows]
  return sample, fn_args.serving_model_dir, rows, examples


def test_boosted_exports_three_signatures_that_agree(exported):
  sample, path, rows, examples = exported
  choice = trainer.read_choice(path)
  assert choice["chosen"] == "boosted" and choice["split"] == "eval"
  assert np.isfinite(choice["candidates"]["boosted"]["eval_rmse"])
  loaded = tf.saved_model.load(path)
  assert {"serving_default", "serving_raw", "transform_features"} <= set(loaded.signatures)
  out = loaded.signatures["serving_default"](examples=tf.constant(examples))
  pred = out[fk.PREDICTION_KEY].numpy()
  assert pred.shape == (len(rows), 1) and np.all(np.isfinite(pred)) and pred.std() > 0
  assert np.all(out["lower"].numpy() < pred) and np.all(pred < out["upper"].numpy())
  np.testing.assert_allclose(out["prediction_original"].numpy(), np.exp(pred), rtol=1e-5)
  assert out["group_label"].numpy().shape == out["is_fallback"].numpy().shape == pred.shape
  y = np.array([r[sample.cfg.dataset.label] for r in rows])
  train_mean = sample.frame[sample.cfg.dataset.label].iloc[:sample.n_train].mean()
  assert np.sqrt(np.mean((pred.ravel() - y) ** 2)) < np.sqrt(np.mean((y - train_mean) ** 2))
  raw = loaded.signatures["serving_raw"]
  specs = raw.structured_input_signature[1]
  raw_out = raw(**{k: tf.constant([r[k] for r in rows], dtype=s.dtype) for k, s in specs.items()})
  np.testing.assert_allclose(raw_out[fk.PREDICTION_KEY].numpy(), pred, rtol=1e-5, atol=1e-4)
  np.testing.assert_array_equal(raw_out[fk.GROUP_OUTPUT_KEY].numpy(),
                                out[fk.GROUP_OUTPUT_KEY].numpy())


def test_dev_server_serves_boosted_over_grpc_and_rest(exported):
  _, path, rows, examples = exported
  loaded = tf.saved_model.load(path)
  want = loaded.signatures["serving_default"](
      examples=tf.constant(examples))[fk.PREDICTION_KEY].numpy()
  specs = loaded.signatures["serving_raw"].structured_input_signature[1]
  columns = {k: [r[k] for r in rows] for k in specs}
  with start_server(os.path.dirname(path), "boosted", SERVER_ARGS) as server:
    server.wait_for_version(1)
    with GrpcClient(server.grpc_target, "boosted", timeout=60) as client:
      got = client.predict({"examples": np.array(examples, dtype=object)})
      np.testing.assert_allclose(got[fk.PREDICTION_KEY], want, rtol=1e-5, atol=1e-4)
      got_raw = client.predict_raw(rows)
      np.testing.assert_allclose(got_raw[fk.PREDICTION_KEY], want, rtol=1e-5, atol=1e-4)
    url = f"{server.rest_url}/v1/models/boosted:predict"
    r = requests.post(url, json={"instances": [{"b64": base64.b64encode(e).decode()}
                                               for e in examples]}, timeout=60)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose([p[fk.PREDICTION_KEY] for p in r.json()["predictions"]], want,
                               rtol=1e-5, atol=1e-4)
    r = requests.post(url, data=json.dumps({"signature_name": "serving_raw",
                                            "inputs": columns}, default=float), timeout=60)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["outputs"][fk.PREDICTION_KEY], want, rtol=1e-5,
                               atol=1e-4)


def test_group_heads_shrink_a_three_row_group_toward_the_shared_head():
  """A group with 3 training rows far above the rest gets a head between the shared one and its
  own rows' mean: partial pooling, neither ignored nor taken at face value."""
  rng = np.random.default_rng(0)
  sizes = [300] * 8 + [3]
  g = np.repeat(np.arange(len(sizes)), sizes)
  offsets = np.append(rng.normal(0.0, 1.0, 8), 6.0)
  x = rng.normal(size=g.size)
  y = 2.0 * x + offsets[g] + rng.normal(0.0, 1.0, g.size)
  feats = {fk.numeric_key("x"): x.astype(np.float32), fk.GROUP_KEY: g.astype(np.int64)}
  val = np.zeros(g.size, bool)
  val[rng.permutation(np.flatnonzero(g < 8))[:400]] = True
  ds = lambda m: trainer.dataset_from_arrays({k: v[m] for k, v in feats.items()}, y[m], 256,
                                             shuffle=False)
  module, result = boosted.fit_one(ds(~val), ds(val), numeric=["x"], categorical=[],
                                   num_groups=len(sizes), label_mean=float(y[~val].mean()),
                                   label_std=float(y[~val].std()), seed=0, with_group=False)
  assert result.choice != "zero"
  assert result.num_threads == 1            # 2,000 training rows: one thread (training_threads)
  small = g == 8
  sf = {k: v[small] for k, v in feats.items()}
  pred = module(sf).numpy().ravel()
  shared = (module.label_mean + module.label_std
            * (module.phi(sf).numpy() @ module.w.numpy())).ravel()
  own_shift = np.mean(y[small] - shared)
  moved = np.mean(pred - shared)
  assert 0.1 * own_shift < moved < 0.95 * own_shift, (moved, own_shift)


def test_row_cap_samples_the_trunk_rows_and_says_so(tmp_path, caplog):
  """model.in_memory_max_rows: above it the boosted trunk fits on a seeded sample of about that
  many train rows (logged), and the run still exports a model; at or under it, all rows."""
  sample = transform_sample.build(str(tmp_path / "tft"), rows=300)
  data = lambda: trainer.input_fn(sample.train_files, sample.data_accessor(),
                                  tft.TFTransformOutput(sample.transform_output), 32,
                                  shuffle=False)
  rows = sum(int(y.shape[0]) for _, y in data())
  with caplog.at_level("INFO"):
    full = trainer.capped_rows(data(), rows, 32, seed=7, what="x")
  assert not any("Bernoulli sample" in r.getMessage() for r in caplog.records)
  assert sum(int(y.shape[0]) for _, y in full) == rows
  cap = rows // 3
  with caplog.at_level("INFO"):
    capped = [y.numpy() for _, y in trainer.capped_rows(data(), cap, 32, seed=7, what="x")]
  got = sum(len(y) for y in capped)
  assert 0.5 * cap < got < 1.5 * cap, (got, cap)
  again = [y.numpy() for _, y in trainer.capped_rows(data(), cap, 32, seed=7, what="x")]
  np.testing.assert_array_equal(np.concatenate(capped), np.concatenate(again))  # seeded
  assert any(f"of the {rows} train rows (model.in_memory_max_rows={cap})" in r.getMessage()
             for r in caplog.records)

  caplog.clear()
  fn_args = tfx.components.FnArgs(
      train_files=sample.train_files, eval_files=sample.eval_files,
      transform_output=sample.transform_output, data_accessor=sample.data_accessor(),
      serving_model_dir=str(tmp_path / "base" / "1"), model_run_dir=str(tmp_path / "logs"),
      custom_config=sample.custom_config(variant="boosted", in_memory_max_rows=cap))
  with caplog.at_level("INFO"):
    trainer.run_fn(fn_args)
  assert any("boosted trunk: fitting on a Bernoulli sample" in r.getMessage()
             for r in caplog.records)
  assert trainer.read_choice(fn_args.serving_model_dir)["chosen"] == "boosted"


def test_trunk_threads_follow_the_training_rows():
  """One thread per ROWS_PER_THREAD training rows, at least one, never more than the CPUs (or
  TF-DF's old ceiling): small data trains on one thread on every machine."""
  per = boosted.ROWS_PER_THREAD
  assert boosted.training_threads(0, cpus=8) == 1
  assert boosted.training_threads(2 * per - 1, cpus=8) == 1
  assert boosted.training_threads(2 * per, cpus=8) == 2
  assert boosted.training_threads(100 * per, cpus=8) == 8
  assert boosted.training_threads(100 * per, cpus=2) == 2
  assert boosted.training_threads(10 ** 9, cpus=256) == boosted.MAX_THREADS
  ds = trainer.dataset_from_arrays({"x": np.zeros(1030, np.float32)}, np.zeros(1030), 256,
                                   shuffle=False)
  assert boosted.count_rows(ds) == 1030
