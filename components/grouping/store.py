"""Reads and writes the grouping artifact: plain JSON (+ .npy copies), a summary and a report.

`grouping.json` alone re-creates the assignment in any language (its "recipe" field says how):
kmeans - encode (numeric columns, then one-hot blocks), replace NaN with `impute`, subtract
`mean`, divide by `scale`, nearest row of `centroids` (first on ties); apriori - position of the
value in `vocabulary`, else `fallback_group`.

Notebook use, one call:
  from components.grouping import load; a = load(uri)   # a.grouping, a.summary, a.report_html
  from components.grouping.store import load; g = load(uri)   # just the fitted Grouping
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from components.grouping.fitting import Grouping, assign
from components.grouping.kselect import KCandidate

GROUPING_FILE = "grouping.json"
SUMMARY_FILE = "summary.json"
REPORT_HTML = "report.html"
REPORT_PNG = "report.png"
FORMAT_VERSION = 2
_ARRAYS = ("mean", "scale", "impute", "centroids")
RECIPE = {
    "kmeans": "x = row values of `columns` (a numeric feature as float64; a one-hot column "
              "'f=v' is 1.0 when feature f equals v, else 0.0); where x is NaN use `impute`; "
              "z = (x - mean) / scale; group = argmin_i sum_j (z_j - centroids[i][j])^2, the "
              "first i on ties",
    "apriori": "group = index of the value (as text; integers in decimal) in `vocabulary`; "
               "any other or missing value -> `fallback_group`",
}


def to_json_dict(g: Grouping) -> Dict[str, Any]:
  d = dataclasses.asdict(g)
  for key in _ARRAYS:
    d[key] = None if d[key] is None else np.asarray(d[key]).tolist()
  d["format_version"] = FORMAT_VERSION
  d["recipe"] = RECIPE[g.mode]
  return d


def from_json_dict(d: Dict[str, Any]) -> Grouping:
  d = dict(d)
  d.pop("format_version", None)
  d.pop("recipe", None)
  for key in _ARRAYS:
    if d.get(key) is not None:
      d[key] = np.asarray(d[key], dtype=np.float64)
  d["selection"] = [KCandidate(**c) for c in d.get("selection", [])]
  return Grouping(**d)


def _dump(obj, path: str) -> None:
  with tf.io.gfile.GFile(path, "w") as f:
    json.dump(obj, f, indent=1, default=_jsonable, allow_nan=False)


def save(g: Grouping, uri: str, summary: Optional[Dict[str, Any]] = None) -> None:
  tf.io.gfile.makedirs(uri)
  _dump(to_json_dict(g), os.path.join(uri, GROUPING_FILE))
  for key in _ARRAYS:
    value = getattr(g, key)
    if value is not None:
      with tf.io.gfile.GFile(os.path.join(uri, f"{key}.npy"), "wb") as f:
        np.save(f, np.asarray(value))
  if summary is not None:
    write_summary(uri, summary)


def write_summary(uri: str, summary: Dict[str, Any]) -> None:
  _dump(summary, os.path.join(uri, SUMMARY_FILE))


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
  path = os.path.join(uri, SUMMARY_FILE)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"no {SUMMARY_FILE} in grouping artifact {uri}")
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


@dataclasses.dataclass
class GroupingArtifact:
  """A grouping artifact read back whole; shows its report when displayed in a notebook."""
  uri: str
  grouping: Grouping
  summary: Dict[str, Any]

  @property
  def report_html(self) -> str:
    return os.path.join(self.uri, REPORT_HTML)

  @property
  def report_png(self) -> str:
    return os.path.join(self.uri, REPORT_PNG)

  def assign(self, columns) -> np.ndarray:
    """Group ids for raw columns (mapping name -> values), exactly as the component does."""
    return assign(self.grouping, columns)

  def _repr_html_(self) -> str:
    with tf.io.gfile.GFile(self.report_html) as f:
      return f.read()


def load_artifact(uri: str) -> GroupingArtifact:
  return GroupingArtifact(uri=uri, grouping=load(uri), summary=load_summary(uri))
