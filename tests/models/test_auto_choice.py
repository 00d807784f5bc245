"""`auto` keeps the candidate with the lower eval-split RMSE: trees where the response has
thresholds, the network where it is smooth and low-noise. Both candidates train for real
(multihead with its empirical-Bayes head refit, boosted with its pooled heads)."""
import numpy as np

from models.grouped_regression import auto
from models.grouped_regression import boosted
from models.grouped_regression import features as fk
from models.grouped_regression import model as model_lib
from models.grouped_regression import trainer

NUMERIC = ["x1", "x2", "x3"]


def _choose(x: np.ndarray, g: np.ndarray, y: np.ndarray, num_groups: int):
  """{candidate: eval RMSE} for multihead/zscore and boosted, and auto's choice."""
  feats = {fk.numeric_key(n): x[:, j].astype(np.float32) for j, n in enumerate(NUMERIC)}
  feats[fk.GROUP_KEY] = g.astype(np.int64)
  val = np.arange(y.size) % 5 == 0
  part = lambda m: {k: v[m] for k, v in feats.items()}
  ds = lambda m, shuffle=False: trainer.dataset_from_arrays(part(m), y[m], 64 if shuffle else 512,
                                                            shuffle=shuffle)
  mean, std = float(y[~val].mean()), float(y[~val].std())
  spec = model_lib.ModelInputs(numeric=NUMERIC, categorical={}, num_groups=num_groups,
                               label_mean=mean, label_std=std)
  net = model_lib.build_model(spec, model_lib.Hparams(trunk_units=(64, 32), seed=0))
  trainer.fit(net, ds(~val, True), ds(val), epochs=60, patience=8, verbose=0,
              refit_ds=ds(~val))
  rmse = lambda pred: float(np.sqrt(np.mean((pred.reshape(-1) - y[val]) ** 2)))
  scores = {"multihead/zscore": rmse(net(part(val), training=False).numpy())}
  module, _ = boosted.fit(ds(~val), ds(val), numeric=NUMERIC, categorical=[],
                          num_groups=num_groups, label_mean=mean, label_std=std, seed=0)
  scores["boosted"] = rmse(module(part(val)).numpy())
  return scores, auto.choose(scores)


def test_auto_keeps_trees_on_thresholds_and_interactions():
  rng = np.random.default_rng(0)
  n = 1500
  x = rng.normal(size=(n, 3))
  g = rng.integers(0, 4, n)
  y = (4.0 * (x[:, 0] > 0.2) * (x[:, 1] > -0.3) + 3.0 * (x[:, 2] > 0.8)
       - 2.0 * (x[:, 0] < -1.0) + 0.5 * g + rng.normal(0.0, 0.1, n))
  scores, choice = _choose(x, g, y, 4)
  assert choice == "boosted", scores


def test_auto_keeps_the_network_on_a_smooth_response():
  rng = np.random.default_rng(1)
  n = 1500
  x = rng.uniform(-2.0, 2.0, size=(n, 3))
  g = rng.integers(0, 4, n)
  y = (np.sin(1.5 * x[:, 0]) + 0.5 * x[:, 1] ** 2 + np.tanh(x[:, 2]) * x[:, 0] + 0.5 * g
       + rng.normal(0.0, 0.05, n))
  scores, choice = _choose(x, g, y, 4)
  assert choice == "multihead/zscore", scores
