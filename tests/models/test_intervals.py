"""Per-group prediction intervals, the group-effects table and the outputs that name a row's group
(issue 14).

Synthetic part: groups with known, different noise levels and very different sizes, plus a
"fallback" group pooling rare categories (each with its own offset). A multihead model is trained
with the Trainer's own loop (trainer.fit, EB head refit), the interval table is fitted with
keras_intervals.fit (Gaussian sd from train, conformal scale from eval), and the served interval
(signatures.group_outputs, what the exported graph computes) is scored on a third, held-out split.

Served part: run_fn on a real Transform output of Ames rows with an a-priori grouping (rare
MS_Zoning values share the fallback group; the label is log price), then the SavedModel in
process, the dev server over gRPC and over REST.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import requests
import tensorflow as tf
from scipy import stats
from tensorflow_transform.tf_metadata import schema_utils
from tfx import v1 as tfx

from models.grouped_regression import features as fk
from models.grouped_regression import group_effects
from models.grouped_regression import keras_intervals
from models.grouped_regression import model as model_lib
from models.grouped_regression import signatures
from models.grouped_regression import trainer
from serving.client.grpc_client import GrpcClient
from serving.launcher import start_server
from tests.models import transform_sample
from tests.serving.helpers import SERVER_ARGS, make_base

LEVEL = 0.9
# train rows and noise sd per group; the last group is the fallback (rare categories pooled)
SIZES = np.array([1600, 1000, 700, 450, 300, 160, 60, 40])
NOISE = np.array([0.3, 1.0, 0.5, 2.0, 0.7, 1.5, 1.0, 1.0])
FALLBACK_CATEGORIES = 8            # the fallback's rows come from 8 categories, own offsets each
EVAL_SHARE, TEST_SHARE = 0.5, 1.0  # held-out rows per train row


@pytest.fixture(scope="module")
def synthetic():
  rng = np.random.default_rng(14)
  num_groups = len(SIZES)
  fb = num_groups - 1
  offsets = rng.normal(0.0, 1.0, num_groups)
  cat_offsets = rng.normal(0.0, 1.5, FALLBACK_CATEGORIES)   # heterogeneous fallback group

  def make(share):
    sizes = np.maximum((SIZES * share).astype(int), 1)
    g = np.repeat(np.arange(num_groups), sizes)
    x = rng.normal(size=(g.size, 2)).astype(np.float32)
    extra = np.where(g == fb, cat_offsets[rng.integers(0, FALLBACK_CATEGORIES, g.size)], 0.0)
    y = 1.5 * x[:, 0] - x[:, 1] + offsets[g] + extra + rng.normal(0.0, NOISE[g])
    return {fk.numeric_key("x1"): x[:, 0], fk.numeric_key("x2"): x[:, 1],
            fk.GROUP_KEY: g.astype(np.int64)}, y.astype(np.float32)

  (tr_f, tr_y), (ev_f, ev_y), (te_f, te_y) = make(1.0), make(EVAL_SHARE), make(TEST_SHARE)
  spec = model_lib.ModelInputs(numeric=["x1", "x2"], categorical={}, num_groups=num_groups,
                               label_mean=float(tr_y.mean()), label_std=float(tr_y.std()))
  model = model_lib.build_model(spec, model_lib.Hparams(variant="multihead", trunk_units=(8,),
                                                        learning_rate=0.01, seed=0))
  ds = lambda f, y, shuffle: trainer.dataset_from_arrays(f, y, 256, shuffle=shuffle, seed=0)
  history = trainer.fit(model, ds(tr_f, tr_y, True), ds(ev_f, ev_y, False), epochs=8,
                        patience=3, verbose=0, refit_ds=ds(tr_f, tr_y, False))
  refit = history.refit
  table, per_group = keras_intervals.fit(model, ds(tr_f, tr_y, False), ds(ev_f, ev_y, False),
                                         num_groups, LEVEL, refit)
  labels = [f"g{i}" for i in range(num_groups - 1)] + ["(fallback)"]
  fallback = np.arange(num_groups) == fb
  served = signatures.GroupOutputs(table.sd, table.z, labels, fallback)
  pred = model({k: v.reshape(-1, 1) for k, v in te_f.items()}, training=False)
  out = {k: v.numpy() for k, v in
         signatures.group_outputs(pred, tf.constant(te_f[fk.GROUP_KEY]), served).items()}
  rows = keras_intervals.effects(model, refit, table, per_group, labels, fallback)
  return dict(table=table, out=out, y=te_y, g=te_f[fk.GROUP_KEY], rows=rows, refit=refit)


def test_90_percent_interval_covers_90_percent_overall_and_per_group(synthetic):
  s = synthetic
  inside = ((s["y"] >= s["out"]["lower"].ravel()) & (s["y"] <= s["out"]["upper"].ravel()))
  coverage = {int(k): float(inside[s["g"] == k].mean()) for k in np.unique(s["g"])
              if (s["g"] == k).sum() >= 30}
  assert len(coverage) >= 6, coverage
  assert 0.87 <= inside.mean() <= 0.93, (inside.mean(), coverage)
  for k, c in coverage.items():
    assert 0.80 <= c <= 0.97, (k, c, coverage)
  # the width follows each group's own noise, not one pooled sd
  sd = s["table"].sd
  big = SIZES >= 300
  assert np.corrcoef(sd[big], NOISE[big])[0, 1] > 0.9, (sd, NOISE)


def test_fallback_interval_is_wider_than_a_large_groups(synthetic):
  table = synthetic["table"]
  largest, fb = int(np.argmax(SIZES)), len(SIZES) - 1
  group_sd = NOISE[largest]
  assert table.gaussian_sd[fb] > table.gaussian_sd[largest]
  assert table.sd[fb] > table.sd[largest] > 0.5 * group_sd


def test_group_effects_table_one_row_per_group_shrinkage_follows_size(synthetic):
  rows = synthetic["rows"]
  assert [r["group_id"] for r in rows] == list(range(len(SIZES)))
  assert [r["train_rows"] for r in rows] == SIZES.tolist()
  assert [r["is_fallback"] for r in rows] == [False] * (len(SIZES) - 1) + [True]
  shrink = np.array([r["shrinkage"] for r in rows])
  assert np.all((shrink > 0) & (shrink <= 1)), shrink
  # more rows, more of its own estimate: the ranks of shrinkage are the ranks of size
  assert stats.spearmanr(shrink, SIZES).correlation == pytest.approx(1.0), shrink
  assert all(np.isfinite(r["intercept_shift"]) and r["intercept_sd"] > 0 for r in rows)
  sd = np.array([r["intercept_sd"] for r in rows])
  assert sd[np.argmin(SIZES)] > sd[np.argmax(SIZES)]


# --- served: run_fn on a real Transform output, a-priori groups with a fallback, log label ---

ZONING = "MS_Zoning"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
  sample = transform_sample.build(str(tmp_path_factory.mktemp("tft_apriori")), rows=400,
                                  apriori_column=ZONING, min_count=15)
  assert sample.cfg.dataset.label_transform == "log"
  root = tmp_path_factory.mktemp("intervals")
  fn_args = tfx.components.FnArgs(
      train_files=sample.train_files, eval_files=sample.eval_files,
      transform_output=sample.transform_output, data_accessor=sample.data_accessor(),
      serving_model_dir=str(root / "model" / "Format-Serving"), model_run_dir=str(root / "logs"),
      custom_config=sample.custom_config(variant="multihead", epochs=4, patience=2,
                                         trunk_units=[16, 8]))
  trainer.run_fn(fn_args)
  spec = dict(schema_utils.schema_as_feature_spec(sample.schema).feature_spec)
  spec.pop(sample.cfg.dataset.label)
  rows = sample.frame.iloc[sample.n_train:].head(40).to_dict("records")
  unseen = dict(rows[0], **{ZONING: "a_zone_never_seen"})     # must go to the fallback group
  rows = rows + [unseen]
  examples = [transform_sample.to_example(r, spec) for r in rows]
  loaded = tf.saved_model.load(fn_args.serving_model_dir)
  out = {k: v.numpy() for k, v in
         loaded.signatures["serving_default"](examples=tf.constant(examples)).items()}
  effects = group_effects.read(trainer.effects_dir(fn_args.serving_model_dir))
  return dict(sample=sample, path=fn_args.serving_model_dir, rows=rows, examples=examples,
              out=out, effects=effects)


def test_served_outputs_name_the_group_and_flag_the_fallback(served):
  out, rows, effects = served["out"], served["rows"], served["effects"]
  gid = out[fk.GROUP_OUTPUT_KEY].ravel()
  labels = np.array([b.decode() for b in out["group_label"].ravel()])
  fallback = out["is_fallback"].ravel()
  by_id = {r["group_id"]: r for r in effects}
  assert sum(r["is_fallback"] for r in effects) == 1
  for i, r in enumerate(rows):
    assert labels[i] == by_id[gid[i]]["group_label"]
    assert fallback[i] == by_id[gid[i]]["is_fallback"]
    if not fallback[i]:
      assert labels[i] == r[ZONING]          # the a-priori category itself
  assert fallback[-1] and not fallback.all()
  # the fallback's interval is wider than the largest group's
  largest = max(effects, key=lambda r: r["train_rows"])
  sd = out["prediction_std"].ravel()
  big = gid == largest["group_id"]
  assert big.any() and not largest["is_fallback"]
  assert sd[fallback].min() > sd[big].max(), (sd[fallback], sd[big])


def test_log_label_back_transform_matches_a_direct_computation(served):
  """lower/upper are log-price quantiles mu -+ z sd(group); *_original are exp of them (the
  median exp(mu) for the point), checked against the group-effects table's interval sd."""
  out, effects = served["out"], served["effects"]
  gid = out[fk.GROUP_OUTPUT_KEY].ravel()
  mu = out[fk.PREDICTION_KEY].ravel().astype(np.float64)
  sd = np.array([effects[g]["interval_sd"] for g in gid])
  z = stats.norm.ppf(0.5 + LEVEL / 2)
  np.testing.assert_allclose(out["prediction_std"].ravel(), sd, rtol=1e-5)
  np.testing.assert_allclose(out["lower"].ravel(), mu - z * sd, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(out["upper"].ravel(), mu + z * sd, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(out["prediction_original"].ravel(), np.exp(mu), rtol=1e-5)
  np.testing.assert_allclose(out["lower_original"].ravel(), np.exp(mu - z * sd), rtol=1e-5)
  np.testing.assert_allclose(out["upper_original"].ravel(), np.exp(mu + z * sd), rtol=1e-5)
  # a price is inside the original-unit interval exactly when its log is inside the log one
  y = np.array([r[served["sample"].cfg.dataset.label] for r in served["rows"][:-1]])
  price = np.exp(y)
  in_log = (y >= out["lower"].ravel()[:-1]) & (y <= out["upper"].ravel()[:-1])
  in_price = ((price >= out["lower_original"].ravel()[:-1])
              & (price <= out["upper_original"].ravel()[:-1]))
  np.testing.assert_array_equal(in_log, in_price)
  assert 0.5 < in_log.mean() <= 1.0


INTERVAL_OUTPUTS = ("lower", "upper", "prediction_std", "group_label", "is_fallback")


def _as_text(values):
  return [v.decode() if isinstance(v, bytes) else v for v in np.asarray(values).ravel()]


def test_in_process_grpc_and_rest_return_the_same_intervals_and_groups(served, tmp_path_factory):
  path, rows, examples, want = served["path"], served["rows"], served["examples"], served["out"]
  loaded = tf.saved_model.load(path)
  specs = loaded.signatures["serving_raw"].structured_input_signature[1]
  raw_want = {k: v.numpy() for k, v in loaded.signatures["serving_raw"](
      **{k: tf.constant([r[k] for r in rows], dtype=s.dtype) for k, s in specs.items()}).items()}
  columns = {k: [r[k] for r in rows] for k in specs}

  def same(got, source):
    for k in INTERVAL_OUTPUTS:
      if k == "group_label":
        assert _as_text(got[k]) == _as_text(want[k]), (source, k)
      elif k == "is_fallback":
        assert [bool(v) for v in np.asarray(got[k]).ravel()] == want[k].ravel().tolist(), source
      else:
        np.testing.assert_allclose(np.asarray(got[k], np.float64).ravel(), want[k].ravel(),
                                   rtol=1e-6, atol=1e-6, err_msg=f"{source} {k}")

  same(raw_want, "in-process serving_raw")
  with start_server(make_base(tmp_path_factory, "served", path), "intervals",
                    SERVER_ARGS) as server:
    server.wait_for_version(1)
    with GrpcClient(server.grpc_target, "intervals", timeout=60) as client:
      same(client.predict({"examples": np.array(examples, dtype=object)}), "gRPC default")
      same(client.predict_raw(rows), "gRPC raw")
    url = f"{server.rest_url}/v1/models/intervals:predict"
    r = requests.post(url, json={"instances": [{"b64": base64.b64encode(e).decode()}
                                               for e in examples]}, timeout=60)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    same({k: [p[k] for p in preds] for k in INTERVAL_OUTPUTS}, "REST row format")
    r = requests.post(url, data=json.dumps({"signature_name": "serving_raw", "inputs": columns},
                                           default=float), timeout=60)
    assert r.status_code == 200, r.text
    same(r.json()["outputs"], "REST columnar raw")
