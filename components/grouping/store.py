"""Reads and writes a Grouping as plain JSON (+ .npy copies) inside the artifact directory.

The JSON alone re-creates the assignment in any language: standardise with impute/mean/scale,
then nearest centroid (kmeans), or look the category up in the vocabulary (apriori).
Notebook use: `from components.grouping.store import load; g = load(artifact_uri)`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from components.grouping.fitting import Grouping, KCandidate

GROUPING_FILE = "grouping.json"
SUMMARY_FILE = "summary.json"
FORMAT_VERSION = 1
_ARRAYS = ("mean", "scale", "impute", "centroids")


def to_json_dict(g: Grouping) -> Dict[str, Any]:
  d = dataclasses.asdict(g)
  for key in _ARRAYS:
    d[key] = None if d[key] is None else np.asarray(d[key]).tolist()
  d["format_version"] = FORMAT_VERSION
  return d


def from_json_dict(d: Dict[str, Any]) -> Grouping:
  d = dict(d)
  d.pop("format_version", None)
  for key in _ARRAYS:
    if d.get(key) is not None:
      d[key] = np.asarray(d[key], dtype=np.float64)
  d["selection"] = [KCandidate(**c) for c in d.get("selection", [])]
  return Grouping(**d)


def save(g: Grouping, uri: str, summary: Optional[Dict[str, Any]] = None) -> None:
  tf.io.gfile.makedirs(uri)
  with tf.io.gfile.GFile(os.path.join(uri, GROUPING_FILE), "w") as f:
    json.dump(to_json_dict(g), f, indent=1)
  for key in _ARRAYS:
    value = getattr(g, key)
    if value is not None:
      with tf.io.gfile.GFile(os.path.join(uri, f"{key}.npy"), "wb") as f:
        np.save(f, np.asarray(value))
  if summary is not None:
    write_summary(uri, summary)


def write_summary(uri: str, summary: Dict[str, Any]) -> None:
  with tf.io.gfile.GFile(os.path.join(uri, SUMMARY_FILE), "w") as f:
    json.dump(summary, f, indent=1, default=_jsonable)


def _jsonable(x):
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  raise TypeError(f"not JSON serialisable: {type(x)}")


def load(uri: str) -> Grouping:
  path = os.path.join(uri, GROUPING_FILE)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"no {GROUPING_FILE} in grouping artifact {uri}")
  with tf.io.gfile.GFile(path) as f:
    return from_json_dict(json.load(f))


def load_summary(uri: str) -> Dict[str, Any]:
  with tf.io.gfile.GFile(os.path.join(uri, SUMMARY_FILE)) as f:
    return json.load(f)
