"""Reading grouping columns out of serialized tf.Examples and writing the group id back in."""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from components.grouping.fitting import GroupingError


def feature_value(example: tf.train.Example, name: str, numeric: bool):
  """The single value of a feature; NaN (numeric) or '' (categorical) when absent or empty."""
  feat = example.features.feature.get(name)
  kind = feat.WhichOneof("kind") if feat is not None else None
  values = getattr(feat, kind).value if kind else []
  if len(values) == 0:
    return float("nan") if numeric else ""
  v = values[0]
  if not numeric:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
  if isinstance(v, bytes):
    try:
      return float(v)
    except ValueError:
      raise GroupingError(f"grouping feature '{name}' is not numeric (value {v!r})") from None
  return float(v)


def extract_columns(serialized: Sequence[bytes], features: Sequence[str],
                    numeric: bool) -> Dict[str, np.ndarray]:
  """Column arrays for a batch of serialized examples."""
  cols: Dict[str, List] = {f: [] for f in features}
  for record in serialized:
    ex = tf.train.Example.FromString(record)
    for f in features:
      cols[f].append(feature_value(ex, f, numeric))
  dtype = np.float64 if numeric else object
  return {f: np.asarray(v, dtype=dtype) for f, v in cols.items()}


def with_group_id(record: bytes, group_id: int, feature_name: str) -> bytes:
  ex = tf.train.Example.FromString(record)
  ex.features.feature[feature_name].int64_list.value[:] = [int(group_id)]
  return ex.SerializeToString()
