"""Keras grouped-regression variants: one shared trunk, groups enter in different ways.

  multihead  shared trunk + per-group linear head = shared head + regularised group delta
             (partial pooling), all heads in one weight tensor gathered by group id.
  embedding  a learned group embedding concatenated with the features, then the trunk.
  attention  the example's representation attends over learned group prototypes
             (tf.keras.layers.MultiHeadAttention); the result joins the trunk output.
  global     the same trunk, no group: the pooled baseline.

Inputs are the transformed features (models/grouped_regression/features.py keys); the output is
the prediction in label units: label_mean + label_std * network output.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence

import tensorflow as tf

from models.grouped_regression import features as fk

VARIANTS = ("multihead", "embedding", "attention", "global")


@dataclasses.dataclass
class ModelInputs:
  """What the model sees: z-scored numerics, vocab-indexed categoricals, the group id."""
  numeric: List[str]                     # raw names; input key fk.numeric_key(name)
  categorical: Dict[str, int]            # raw name -> vocabulary size incl. OOV bucket
  num_groups: int
  label_mean: float = 0.0
  label_std: float = 1.0


@dataclasses.dataclass
class Hparams:
  variant: str = "multihead"
  trunk_units: Sequence[int] = (64, 32)
  head_units: int = 16
  embedding_dim: int = 8
  attention_heads: int = 2
  delta_l2: float = 1e-3
  learning_rate: float = 3e-3
  seed: int = 7

  @classmethod
  def from_dict(cls, d) -> "Hparams":
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


class GroupedLinearHead(tf.keras.layers.Layer):
  """y = h . (w + dW[g]) + (b + db[g]); dW, db pulled toward 0 by L2 (partial pooling)."""

  def __init__(self, num_groups: int, delta_l2: float, **kwargs):
    super().__init__(**kwargs)
    self.num_groups = num_groups
    self.delta_l2 = delta_l2

  def build(self, input_shape):
    h_dim = int(input_shape[0][-1])
    reg = tf.keras.regularizers.L2(self.delta_l2) if self.delta_l2 > 0 else None
    self.w = self.add_weight(name="shared_w", shape=(h_dim,), initializer="glorot_uniform")
    self.b = self.add_weight(name="shared_b", shape=(), initializer="zeros")
    self.dw = self.add_weight(name="group_dw", shape=(self.num_groups, h_dim),
                              initializer="zeros", regularizer=reg)
    self.db = self.add_weight(name="group_db", shape=(self.num_groups,),
                              initializer="zeros", regularizer=reg)

  def call(self, inputs):
    h, g = inputs
    g = tf.reshape(tf.cast(g, tf.int32), [-1])
    w = self.w[None, :] + tf.gather(self.dw, g)          # [batch, h_dim]
    b = self.b + tf.gather(self.db, g)                   # [batch]
    return tf.reduce_sum(h * w, axis=1, keepdims=True) + b[:, None]

  def get_config(self):
    return {**super().get_config(), "num_groups": self.num_groups, "delta_l2": self.delta_l2}


def _inputs(spec: ModelInputs) -> Dict[str, tf.keras.Input]:
  inp = {fk.numeric_key(n): tf.keras.Input(shape=(1,), name=fk.numeric_key(n), dtype=tf.float32)
         for n in spec.numeric}
  inp.update({fk.categorical_key(n): tf.keras.Input(shape=(1,), name=fk.categorical_key(n),
                                                    dtype=tf.int64) for n in spec.categorical})
  inp[fk.GROUP_KEY] = tf.keras.Input(shape=(1,), name=fk.GROUP_KEY, dtype=tf.int64)
  return inp


def _feature_vector(spec: ModelInputs, inp, hp: Hparams) -> tf.Tensor:
  parts = [inp[fk.numeric_key(n)] for n in spec.numeric]
  for name, size in spec.categorical.items():
    dim = min(hp.embedding_dim, max(2, size // 2))
    emb = tf.keras.layers.Embedding(size, dim, name=f"emb_{name}")(inp[fk.categorical_key(name)])
    parts.append(tf.keras.layers.Flatten()(emb))
  return parts[0] if len(parts) == 1 else tf.keras.layers.Concatenate()(parts)


def _trunk(x: tf.Tensor, hp: Hparams) -> tf.Tensor:
  for i, units in enumerate(hp.trunk_units):
    x = tf.keras.layers.Dense(units, activation="relu", name=f"trunk_{i}")(x)
  return x


def _group_embedding(spec: ModelInputs, hp: Hparams, name: str):
  return tf.keras.layers.Embedding(spec.num_groups, hp.embedding_dim, name=name)


def build_model(spec: ModelInputs, hp: Hparams) -> tf.keras.Model:
  """A compiled Keras model for `hp.variant`."""
  if hp.variant not in VARIANTS:
    raise ValueError(f"model.variant '{hp.variant}' not in {VARIANTS}")
  tf.keras.utils.set_random_seed(hp.seed)
  inp = _inputs(spec)
  x = _feature_vector(spec, inp, hp)
  g = inp[fk.GROUP_KEY]
  if hp.variant == "embedding":
    ge = tf.keras.layers.Flatten()(_group_embedding(spec, hp, "group_embedding")(g))
    x = tf.keras.layers.Concatenate()([x, ge])
  h = _trunk(x, hp)
  if hp.variant == "multihead":
    out = GroupedLinearHead(spec.num_groups, hp.delta_l2, name="grouped_head")([h, g])
  elif hp.variant == "attention":
    d = hp.embedding_dim
    prototypes = _group_embedding(spec, hp, "group_prototypes")(
        tf.range(spec.num_groups)[None, :] * tf.ones_like(g, tf.int32))   # [batch, G, d]
    own = _group_embedding(spec, hp, "group_query")(g)                   # [batch, 1, d]
    query = tf.keras.layers.Dense(d, name="query")(h)[:, None, :] + own  # [batch, 1, d]
    attended = tf.keras.layers.MultiHeadAttention(
        num_heads=hp.attention_heads, key_dim=d, name="group_attention")(
            query=query, value=prototypes, key=prototypes)               # [batch, 1, d]
    z = tf.keras.layers.Concatenate()([h, tf.keras.layers.Flatten()(attended)])
    z = tf.keras.layers.Dense(hp.head_units, activation="relu", name="head_hidden")(z)
    out = tf.keras.layers.Dense(1, name="head")(z)
  else:
    out = tf.keras.layers.Dense(1, name="head")(h)
  pred = tf.keras.layers.Rescaling(spec.label_std, offset=spec.label_mean, name="to_label")(out)
  model = tf.keras.Model(inputs=inp, outputs=pred, name=f"grouped_regression_{hp.variant}")
  model.compile(optimizer=tf.keras.optimizers.Adam(hp.learning_rate), loss="mse",
                metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse")])
  return model
