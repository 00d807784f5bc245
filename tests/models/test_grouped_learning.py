"""What grouping buys, on tiny synthetic data trained with the pipeline's own fit loop."""
import numpy as np
import pytest

from models.grouped_regression import features as fk
from models.grouped_regression import model as model_lib
from models.grouped_regression import trainer


def _train(x, g, y, num_groups, variant, *, delta_l2=1e-3, epochs=40, seed=0):
  spec = model_lib.ModelInputs(numeric=["x"], categorical={}, num_groups=num_groups,
                               label_mean=float(y.mean()), label_std=float(y.std()))
  hp = model_lib.Hparams(variant=variant, trunk_units=(16, 8), delta_l2=delta_l2,
                         learning_rate=0.01, seed=seed)
  model = model_lib.build_model(spec, hp)
  feats = {fk.numeric_key("x"): x.astype(np.float32), fk.GROUP_KEY: g}
  train = trainer.dataset_from_arrays(feats, y, 32, seed=seed)
  val = trainer.dataset_from_arrays(feats, y, 1024, shuffle=False)
  trainer.fit(model, train, val, epochs=epochs, patience=epochs, verbose=0)
  return model


def _slope(model, group):
  x = np.array([[-1.0], [1.0]], np.float32)
  p = model({fk.numeric_key("x"): x, fk.GROUP_KEY: np.full((2, 1), group)}).numpy().ravel()
  return (p[1] - p[0]) / 2.0


def _rmse(model, x, g, y):
  p = model({fk.numeric_key("x"): x.reshape(-1, 1).astype(np.float32),
             fk.GROUP_KEY: g.reshape(-1, 1)}).numpy().ravel()
  return float(np.sqrt(np.mean((p - y) ** 2)))


def _two_groups(n=600, seed=0):
  rng = np.random.default_rng(seed)
  g = np.arange(n) % 2
  x = rng.uniform(-1.5, 1.5, n)
  y = np.where(g == 0, 2.0, -2.0) * x + rng.normal(0, 0.1, n)
  return x, g, y


def test_multihead_learns_opposite_slopes_global_cannot():
  x, g, y = _two_groups()
  mh = _train(x, g, y, 2, "multihead")
  glob = _train(x, g, y, 2, "global")
  assert _slope(mh, 0) == pytest.approx(2.0, abs=0.3)
  assert _slope(mh, 1) == pytest.approx(-2.0, abs=0.3)
  assert _rmse(mh, x, g, y) < 0.3
  # The global model sees no group (one slope for both by construction); it cannot learn
  # either group's slope: the best single fit is y ~ 0, the two slopes cancel.
  for group, true_slope in ((0, 2.0), (1, -2.0)):
    assert abs(_slope(glob, group) - true_slope) > 1.5, (group, _slope(glob, group))
  assert _rmse(glob, x, g, y) > 1.0
  assert _rmse(glob, x, g, y) > 3 * _rmse(mh, x, g, y)


def test_partial_pooling_pulls_a_three_row_group_toward_the_shared_head():
  """Two big groups share slope +1; group 2 has 3 rows with slope -3. Strong pooling keeps
  group 2's head near the shared one (positive slope); no pooling lets it chase its 3 rows."""
  rng = np.random.default_rng(1)
  n_big = 400
  x = np.concatenate([rng.uniform(-1.5, 1.5, 2 * n_big), [-1.0, 0.0, 1.0]])
  g = np.concatenate([np.zeros(n_big, int), np.ones(n_big, int), [2, 2, 2]])
  y = np.where(g == 2, -3.0, 1.0) * x + rng.normal(0, 0.05, len(x))
  pooled = _train(x, g, y, 3, "multihead", delta_l2=0.3, epochs=60)
  unpooled = _train(x, g, y, 3, "multihead", delta_l2=0.0, epochs=60)

  def head_gap(model, group):
    w, b = model.get_layer("grouped_head").group_weights()
    shared = model.get_layer("grouped_head")
    return float(np.linalg.norm(np.append(w[group] - shared.w.numpy(),
                                          b[group] - shared.b.numpy())))

  assert head_gap(pooled, 2) < 0.5 * head_gap(unpooled, 2)
  assert _slope(pooled, 2) > 0.5           # pulled to the shared +1
  assert _slope(unpooled, 2) < 0.0         # fits its own rows
  assert _slope(pooled, 0) == pytest.approx(1.0, abs=0.2)
