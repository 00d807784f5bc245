"""Keras grouped-regression variants: one shared trunk, groups enter in different ways.

  multihead  shared trunk + per-group linear head = shared head + regularised group delta
             (partial pooling), all heads in one weight tensor gathered by group id: one
             forward pass for every group (the seed article's "separate models sharing a
             layer", done as one model).
  embedding  a learned group embedding concatenated with the features, then the trunk.
  attention  each example's query (from its features and its own group) attends over learned
             per-group prototypes with tf.keras.layers.MultiHeadAttention on [batch, 1, d]
             queries and [batch, G, d] keys/values; the result joins the trunk output.
  global     the same trunk and head, no group: the pooled baseline.

Every variant's head sees [trunk output, input features] (a linear skip, "wide and deep"), so
the variants differ only in how the group enters. The skip takes the z-scored numerics and the
categorical embeddings; piecewise-linear bins (numeric_bins) feed the shared trunk only.
Group-specific parameters (head deltas, group embeddings) carry an L2 penalty `delta_l2` toward
zero: a group with few rows stays near the shared model. For `multihead`, training ends with an
empirical-Bayes refit of those deltas (pooling.py: closed-form ridge toward the shared head,
strength chosen on the eval split; `head_refit: false` keeps the SGD deltas). The penalty is
stated on the standardised label scale (multiplied by label_std**2 because the loss is in label
units), so one value means the same on every dataset.

Inputs are the transformed features (models/grouped_regression/features.py keys); the output is
the prediction in label units: label_mean + label_std * network output.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence

import tensorflow as tf

from models.grouped_regression import autograph_rules  # noqa: F401  (installs the rule)
from models.grouped_regression import features as fk

VARIANTS = ("multihead", "embedding", "attention", "global")


@dataclasses.dataclass
class ModelInputs:
  """What the model sees: z-scored numerics (and, with numeric_bins > 1, their piecewise-linear
  encodings), vocab-indexed categoricals, the group id."""
  numeric: List[str]                     # raw names; input key fk.numeric_key(name)
  categorical: Dict[str, int]            # raw name -> vocabulary size incl. OOV bucket
  num_groups: int
  label_mean: float = 0.0
  label_std: float = 1.0
  numeric_bins: int = 0                  # > 1: input fk.piecewise_key(name) of that width


@dataclasses.dataclass
class Hparams:
  variant: str = "multihead"
  trunk_units: Sequence[int] = (64, 32)
  head_units: int = 16
  embedding_dim: int = 8
  attention_heads: int = 2
  delta_l2: float = 1e-3
  head_refit: bool = True
  learning_rate: float = 3e-3
  seed: int = 7

  @classmethod
  def from_dict(cls, d) -> "Hparams":
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def _l2(strength: float, label_std: float) -> Optional[tf.keras.regularizers.Regularizer]:
  """L2 on the standardised-label scale (the loss is in label units, hence label_std**2)."""
  return tf.keras.regularizers.L2(strength * label_std ** 2) if strength > 0 else None


@tf.keras.utils.register_keras_serializable(package="grouped_regression")
class GroupedLinearHead(tf.keras.layers.Layer):
  """y = h . (w + dW[g]) + (b + db[g]); dW, db pulled toward 0 by L2 (partial pooling).

  All group heads live in one [G, h] tensor; a gather picks each row's head, so the cost is
  one extra [batch, h] gather over the pooled head, whatever the number of groups.
  """

  def __init__(self, num_groups: int, delta_l2: float, label_std: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    self.num_groups = num_groups
    self.delta_l2 = delta_l2
    self.label_std = label_std

  def build(self, input_shape):
    h_dim = int(input_shape[0][-1])
    reg = _l2(self.delta_l2, self.label_std)
    self.w = self.add_weight(name="shared_w", shape=(h_dim,), initializer="glorot_uniform")
    self.b = self.add_weight(name="shared_b", shape=(), initializer="zeros")
    self.dw = self.add_weight(name="group_dw", shape=(self.num_groups, h_dim),
                              initializer="zeros", regularizer=reg)
    self.db = self.add_weight(name="group_db", shape=(self.num_groups,),
                              initializer="zeros", regularizer=reg)
    super().build(input_shape)

  def call(self, inputs):
    h, g = inputs
    g = tf.reshape(tf.cast(g, tf.int32), [-1])
    w = self.w[None, :] + tf.gather(self.dw, g)          # [batch, h_dim]
    b = self.b + tf.gather(self.db, g)                   # [batch]
    return tf.reduce_sum(h * w, axis=1, keepdims=True) + b[:, None]

  def group_weights(self):
    """(w + dW, b + db) per group as NumPy: the heads the model applies."""
    return (self.w.numpy()[None, :] + self.dw.numpy(), self.b.numpy() + self.db.numpy())

  def get_config(self):
    return {**super().get_config(), "num_groups": self.num_groups, "delta_l2": self.delta_l2,
            "label_std": self.label_std}


@tf.keras.utils.register_keras_serializable(package="grouped_regression")
class GroupPrototypes(tf.keras.layers.Layer):
  """A learned [G, d] table, tiled to [batch, G, d]: the keys/values every example attends over."""

  def __init__(self, num_groups: int, dim: int, **kwargs):
    super().__init__(**kwargs)
    self.num_groups = num_groups
    self.dim = dim

  def build(self, input_shape):
    self.table = self.add_weight(name="prototypes", shape=(self.num_groups, self.dim),
                                 initializer="glorot_uniform")
    super().build(input_shape)

  def call(self, like):
    batch = tf.shape(like)[0]
    return tf.tile(self.table[None, :, :], tf.stack([batch, 1, 1]))

  def get_config(self):
    return {**super().get_config(), "num_groups": self.num_groups, "dim": self.dim}


def _inputs(spec: ModelInputs) -> Dict[str, tf.keras.Input]:
  inp = {fk.numeric_key(n): tf.keras.Input(shape=(1,), name=fk.numeric_key(n), dtype=tf.float32)
         for n in spec.numeric}
  if spec.numeric_bins > 1:
    inp.update({fk.piecewise_key(n): tf.keras.Input(shape=(spec.numeric_bins,),
                                                    name=fk.piecewise_key(n), dtype=tf.float32)
                for n in spec.numeric})
  inp.update({fk.categorical_key(n): tf.keras.Input(shape=(1,), name=fk.categorical_key(n),
                                                    dtype=tf.int64) for n in spec.categorical})
  inp[fk.GROUP_KEY] = tf.keras.Input(shape=(1,), name=fk.GROUP_KEY, dtype=tf.int64)
  return inp


def _concat(parts: List[tf.Tensor], name: str) -> tf.Tensor:
  return parts[0] if len(parts) == 1 else tf.keras.layers.Concatenate(name=name)(parts)


def _feature_vectors(spec: ModelInputs, inp, hp: Hparams):
  """([batch, F] for the trunk, [batch, F'] for the head's linear skip): numerics as they are
  and each categorical through its own small embedding in both; the piecewise-linear encodings
  in the trunk's only. Per-group head deltas on B ramps per feature gave every group its own
  curve, which extrapolated wildly on rare value combinations of a group (a +309 min flight
  delay on an ordinary row); the shared trunk learns the curve once for every group."""
  plain = [inp[fk.numeric_key(n)] for n in spec.numeric]
  for name, size in spec.categorical.items():
    dim = min(hp.embedding_dim, max(2, size // 2))
    safe = fk.tensor_name(name)  # layer names: TF's character set
    emb = tf.keras.layers.Embedding(size, dim, name=f"emb_{safe}")(inp[fk.categorical_key(name)])
    plain.append(tf.keras.layers.Flatten(name=f"flat_{safe}")(emb))
  if not plain:
    raise ValueError("the model needs at least one numeric or categorical feature")
  bins = ([inp[fk.piecewise_key(n)] for n in spec.numeric] if spec.numeric_bins > 1 else [])
  head_x = _concat(plain, "features")
  return (_concat(plain + bins, "features_and_bins") if bins else head_x), head_x


def _trunk(x: tf.Tensor, hp: Hparams) -> tf.Tensor:
  for i, units in enumerate(hp.trunk_units):
    x = tf.keras.layers.Dense(units, activation="relu", name=f"trunk_{i}")(x)
  return x


def _group_embedding(spec: ModelInputs, hp: Hparams, name: str, g: tf.Tensor) -> tf.Tensor:
  """[batch, d] learned vector of the row's group, L2-pulled toward 0 (the "average" group)."""
  emb = tf.keras.layers.Embedding(
      spec.num_groups, hp.embedding_dim, name=name,
      embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.01),
      embeddings_regularizer=_l2(hp.delta_l2, spec.label_std))(g)
  return tf.keras.layers.Flatten(name=f"{name}_flat")(emb)


def _attention(spec: ModelInputs, hp: Hparams, h: tf.Tensor, g: tf.Tensor) -> tf.Tensor:
  """[batch, d]: the example's query over all group prototypes (keys = values = prototypes)."""
  d = hp.embedding_dim
  own = _group_embedding(spec, hp, "group_query", g)                         # [batch, d]
  query = tf.keras.layers.Add(name="query")([tf.keras.layers.Dense(d, name="query_proj")(h),
                                             own])
  query = tf.keras.layers.Reshape((1, d), name="query_seq")(query)            # [batch, 1, d]
  prototypes = GroupPrototypes(spec.num_groups, d, name="group_prototypes")(h)  # [batch, G, d]
  attended = tf.keras.layers.MultiHeadAttention(
      num_heads=hp.attention_heads, key_dim=d, name="group_attention")(
          query=query, value=prototypes, key=prototypes)                     # [batch, 1, d]
  return tf.keras.layers.Reshape((d,), name="attended")(attended)


def build_model(spec: ModelInputs, hp: Hparams) -> tf.keras.Model:
  """A compiled Keras model for `hp.variant` (loss: MSE in label units; metric: RMSE)."""
  if hp.variant not in VARIANTS:
    raise ValueError(f"model.variant '{hp.variant}' not in {VARIANTS}")
  if spec.num_groups < 1:
    raise ValueError(f"num_groups must be >= 1 (got {spec.num_groups})")
  tf.keras.utils.set_random_seed(hp.seed)
  inp = _inputs(spec)
  x, head_x = _feature_vectors(spec, inp, hp)
  g = inp[fk.GROUP_KEY]
  trunk_in = x
  if hp.variant == "embedding":
    trunk_in = tf.keras.layers.Concatenate(name="features_and_group")(
        [x, _group_embedding(spec, hp, "group_embedding", g)])
  h = _trunk(trunk_in, hp)
  if hp.variant == "attention":
    z = tf.keras.layers.Concatenate(name="trunk_and_attention")([h, _attention(spec, hp, h, g)])
    h = tf.keras.layers.Dense(hp.head_units, activation="relu", name="head_hidden")(z)
  head_in = tf.keras.layers.Concatenate(name="head_input")([h, head_x])  # linear skip: wide & deep
  if hp.variant == "multihead":
    out = GroupedLinearHead(spec.num_groups, hp.delta_l2, spec.label_std,
                            name="grouped_head")([head_in, g])
  else:
    out = tf.keras.layers.Dense(1, name="head")(head_in)
  pred = tf.keras.layers.Rescaling(spec.label_std, offset=spec.label_mean, name="to_label")(out)
  model = tf.keras.Model(inputs=inp, outputs=pred, name=f"grouped_regression_{hp.variant}")
  model.compile(optimizer=tf.keras.optimizers.Adam(hp.learning_rate), loss="mse",
                metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse")])
  return model
