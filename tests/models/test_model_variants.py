"""Every variant: output shape, gradients reaching every weight, and how the group enters."""
import numpy as np
import pytest
import tensorflow as tf

from models.grouped_regression import features as fk
from models.grouped_regression import model as model_lib

SPEC = model_lib.ModelInputs(numeric=["a", "b"], categorical={"c": 4}, num_groups=5,
                             label_mean=10.0, label_std=3.0)


def _batch(n=32, seed=0):
  rng = np.random.default_rng(seed)
  return {fk.numeric_key("a"): rng.normal(size=(n, 1)).astype(np.float32),
          fk.numeric_key("b"): rng.normal(size=(n, 1)).astype(np.float32),
          fk.categorical_key("c"): rng.integers(0, 4, (n, 1)),
          fk.GROUP_KEY: np.arange(n).reshape(n, 1) % 5}


@pytest.mark.parametrize("variant", model_lib.VARIANTS)
def test_shape_and_gradients(variant):
  model = model_lib.build_model(SPEC, model_lib.Hparams(variant=variant, trunk_units=(8, 4)))
  x = _batch()
  y = np.random.default_rng(1).normal(10.0, 3.0, (32, 1)).astype(np.float32)
  with tf.GradientTape() as tape:
    pred = model(x, training=True)
    loss = tf.reduce_mean(tf.square(pred - y)) + tf.add_n(model.losses or [0.0])
  assert pred.shape == (32, 1)
  assert np.all(np.isfinite(pred.numpy()))
  grads = tape.gradient(loss, model.trainable_variables)
  for v, grad in zip(model.trainable_variables, grads):
    assert grad is not None, f"{variant}: no gradient reaches {v.name}"
    g = tf.convert_to_tensor(grad).numpy()
    assert np.all(np.isfinite(g)), v.name
    assert np.abs(g).sum() > 0, f"{variant}: zero gradient for {v.name}"
  names = " ".join(v.name for v in model.trainable_variables)
  if variant == "global":
    assert "group" not in names
  else:
    assert "group" in names, f"{variant} has no group-specific weights: {names}"


@pytest.mark.parametrize("variant", model_lib.VARIANTS)
def test_group_changes_prediction_unless_global(variant):
  model = model_lib.build_model(SPEC, model_lib.Hparams(variant=variant, trunk_units=(8, 4)))
  for v in model.trainable_variables:   # move every weight off its initialiser (deltas start at 0)
    v.assign(v + tf.random.stateless_normal(v.shape, seed=[1, 2], stddev=0.3, dtype=v.dtype))
  x = _batch()
  other = dict(x, **{fk.GROUP_KEY: (x[fk.GROUP_KEY] + 1) % 5})
  diff = np.abs(model(x).numpy() - model(other).numpy()).max()
  if variant == "global":
    assert diff == 0.0
  else:
    assert diff > 1e-3


def test_unknown_variant_is_a_clear_error():
  with pytest.raises(ValueError, match="model.variant 'mixture' not in"):
    model_lib.build_model(SPEC, model_lib.Hparams(variant="mixture"))


def test_output_is_in_label_units():
  model = model_lib.build_model(SPEC, model_lib.Hparams(variant="multihead"))
  for v in model.trainable_variables:
    v.assign(tf.zeros_like(v))
  np.testing.assert_allclose(model(_batch()).numpy(), SPEC.label_mean, rtol=1e-6)


@pytest.mark.parametrize("variant", model_lib.VARIANTS)
def test_piecewise_inputs_reach_the_model(variant):
  """numeric_bins: each numeric's [bins] encoding is an input, and the output depends on it."""
  spec = model_lib.ModelInputs(numeric=["a", "b"], categorical={"c": 4}, num_groups=5,
                               label_mean=10.0, label_std=3.0, numeric_bins=6)
  model = model_lib.build_model(spec, model_lib.Hparams(variant=variant, trunk_units=(8, 4)))
  assert {fk.piecewise_key("a"), fk.piecewise_key("b")} <= set(model.input_names)
  rng = np.random.default_rng(2)
  x = dict(_batch(), **{fk.piecewise_key(n): rng.uniform(size=(32, 6)).astype(np.float32)
                        for n in ("a", "b")})
  pred = model(x).numpy()
  assert pred.shape == (32, 1) and np.all(np.isfinite(pred))
  moved = dict(x, **{fk.piecewise_key("a"): 1.0 - x[fk.piecewise_key("a")]})
  assert np.abs(model(moved).numpy() - pred).max() > 1e-4


def test_piecewise_bins_feed_the_trunk_but_not_the_group_heads():
  """Per-group deltas on B ramps per feature gave every group its own curve, which extrapolated
  wildly on a group's rare rows; the group heads see z-scores and embeddings only."""
  spec = model_lib.ModelInputs(numeric=["a", "b"], categorical={"c": 4}, num_groups=5,
                               numeric_bins=8)
  model = model_lib.build_model(spec, model_lib.Hparams(variant="multihead", trunk_units=(8, 4)))
  head = model.get_layer("grouped_head")
  emb_dim = min(model_lib.Hparams().embedding_dim, max(2, 4 // 2))
  assert head.dw.shape == (5, 4 + 2 + emb_dim)                 # trunk out + z-scores + embedding
  trunk_in = model.get_layer("trunk_0").input.shape[-1]
  assert trunk_in == 2 + 2 * 8 + emb_dim                       # z-scores + bins + embedding
