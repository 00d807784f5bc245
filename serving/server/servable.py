"""One loaded SavedModel version: its signatures, input specs and a checked `run`.

Generic over signatures (read from the SavedModel, never from our model code) so the server
serves whatever the Pusher exported, including `transform_features` or a future signature.
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, Mapping, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from serving.server.errors import from_tf_error, invalid, not_found

DEFAULT_SIGNATURE = "serving_default"
SERVE_TAG = "serve"
REGRESS_METHOD = "tensorflow/serving/regress"


def shape_str(shape: tf.TensorShape) -> str:
  if shape.rank is None:
    return "<any>"
  return "[" + ", ".join("None" if d is None else str(d) for d in shape.as_list()) + "]"


def read_signature_defs(path: str) -> Dict[str, meta_graph_pb2.SignatureDef]:
  """SignatureDefs of the 'serve' MetaGraph, as TF Serving reports them in GetModelMetadata."""
  sm = saved_model_pb2.SavedModel()
  pb = os.path.join(path, "saved_model.pb")
  if os.path.exists(pb):
    with open(pb, "rb") as f:
      sm.ParseFromString(f.read())
  else:
    from google.protobuf import text_format
    with open(os.path.join(path, "saved_model.pbtxt")) as f:
      text_format.Parse(f.read(), sm)
  graphs = [g for g in sm.meta_graphs if SERVE_TAG in g.meta_info_def.tags] or list(sm.meta_graphs)
  return dict(graphs[0].signature_def) if graphs else {}


class Servable:
  """A SavedModel version ready to run; `refs` counts in-flight requests (ModelManager's lock)."""

  def __init__(self, model_name: str, version: int, path: str):
    self.model_name, self.version, self.path = model_name, version, path
    self.signature_defs = read_signature_defs(path)
    self._loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
    self._functions = dict(self._loaded.signatures)
    self.input_specs: Dict[str, Dict[str, tf.TensorSpec]] = {
        k: dict(fn.structured_input_signature[1]) for k, fn in self._functions.items()}
    self.output_names: Dict[str, Tuple[str, ...]] = {
        k: tuple(sorted(fn.structured_outputs)) for k, fn in self._functions.items()}
    self.refs = 0

  def __repr__(self) -> str:
    return f"Servable({self.model_name!r}, version={self.version})"

  @property
  def signature_names(self) -> Tuple[str, ...]:
    return tuple(sorted(self._functions))

  def resolve(self, signature_name: str) -> str:
    """'' means serving_default (TF Serving); unknown names are NOT_FOUND."""
    name = signature_name or DEFAULT_SIGNATURE
    if name not in self._functions:
      raise not_found(f"signature '{name}' not found in model '{self.model_name}' version "
                      f"{self.version}; available: {list(self.signature_names)}")
    return name

  def method_name(self, signature_name: str) -> str:
    sd = self.signature_defs.get(signature_name)
    return sd.method_name if sd is not None else ""

  def check_input_names(self, signature: str, names: Iterable[str]) -> Dict[str, tf.TensorSpec]:
    """Specs of `signature` after rejecting unknown and missing input names."""
    specs = self.input_specs[signature]
    given = set(names)
    unknown, missing = sorted(given - set(specs)), sorted(set(specs) - given)
    if unknown:
      raise invalid(f"unknown input(s) {unknown} for signature '{signature}'; it expects "
                    f"{sorted(specs)}")
    if missing:
      raise invalid(f"missing input(s) {missing} for signature '{signature}'; it expects "
                    f"{sorted(specs)}")
    return specs

  def run(self, signature: str, arrays: Mapping[str, np.ndarray],
          output_filter: Iterable[str] = ()) -> Dict[str, np.ndarray]:
    """Runs a resolved signature on checked inputs; TF op errors keep their status code."""
    specs = self.check_input_names(signature, arrays)
    feeds = {}
    for name, spec in specs.items():
      arr = arrays[name]
      if not spec.shape.is_compatible_with(arr.shape):
        raise invalid(f"input '{name}' must have shape {shape_str(spec.shape)}, got "
                      f"{list(arr.shape)}")
      try:
        feeds[name] = tf.constant(arr, dtype=spec.dtype)
      except (TypeError, ValueError) as e:
        raise invalid(f"input '{name}' cannot be a {spec.dtype.name} tensor: {e}") from None
    wanted = list(output_filter)
    outputs_known = self.output_names[signature]
    bad = sorted(set(wanted) - set(outputs_known))
    if bad:
      raise invalid(f"output_filter names unknown output(s) {bad}; signature '{signature}' "
                    f"has {list(outputs_known)}")
    try:
      outputs = self._functions[signature](**feeds)
    except tf.errors.OpError as e:
      raise from_tf_error(e, f"signature '{signature}'") from None
    except (TypeError, ValueError) as e:
      raise invalid(f"signature '{signature}': {e}") from None
    keep = wanted or outputs_known
    return {k: outputs[k].numpy() for k in keep}

  def unload(self) -> None:
    """Drops the TF objects; memory goes when the last reference (an in-flight call) ends."""
    self._functions.clear()
    self._loaded = None
