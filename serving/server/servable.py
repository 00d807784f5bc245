"""One loaded SavedModel version: its signatures, input specs and a checked `run`.

Loaded the way tensorflow_model_server loads it (SavedModelBundle): the 'serve' MetaGraph in its
own graph and Session, signatures run by their SignatureDef tensor names. Generic over
signatures (read from the SavedModel, never from our model code), so the server serves whatever
the Pusher exported, including `transform_features` or a future signature.

Why a Session and not `tf.saved_model.load(...).signatures`: a 1-row request is dominated by
per-call overhead, and a cached Session callable (ops on the calling thread with
`inter_op_threads=-1`) costs a quarter to a half of an eager signature call (serving/README.md).
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, saved_model_pb2

from serving.server.errors import from_tf_error, invalid, not_found

DEFAULT_SIGNATURE = "serving_default"
SERVE_TAG = "serve"
REGRESS_METHOD = "tensorflow/serving/regress"
CALLER_THREAD = -1  # ConfigProto: a negative inter-op pool size runs every op on the caller


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


def _spec(info: meta_graph_pb2.TensorInfo) -> tf.TensorSpec:
  return tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.dtypes.as_dtype(info.dtype))


def session_config(inter_op_threads: int = CALLER_THREAD,
                   intra_op_threads: int = 0) -> tf.compat.v1.ConfigProto:
  """TF Serving's --tensorflow_inter_op_parallelism / --tensorflow_intra_op_parallelism."""
  return tf.compat.v1.ConfigProto(inter_op_parallelism_threads=inter_op_threads,
                                  intra_op_parallelism_threads=intra_op_threads,
                                  allow_soft_placement=True)


def register_custom_ops(path: str) -> None:
  """A TF-DF model (model.variant boosted) runs ops that `import tensorflow_decision_forests`
  registers; other models skip that heavy import."""
  pb = os.path.join(path, "saved_model.pb")
  if os.path.exists(pb):
    with open(pb, "rb") as f:
      if b"SimpleML" in f.read():
        # pylint: disable-next=g-import-not-at-top,unused-import
        import tensorflow_decision_forests  # noqa: F401


class Servable:
  """A SavedModel version ready to run; `refs` counts in-flight requests (ModelManager's lock)."""

  def __init__(self, model_name: str, version: int, path: str,
               config: Optional[tf.compat.v1.ConfigProto] = None):
    self.model_name, self.version, self.path = model_name, version, path
    register_custom_ops(path)
    graph = tf.Graph()
    self._session = tf.compat.v1.Session(graph=graph, config=config or session_config())
    try:
      with graph.as_default():
        meta_graph = tf.compat.v1.saved_model.loader.load(self._session, [SERVE_TAG], path)
    except BaseException:
      self._session.close()
      raise
    self.signature_defs: Dict[str, meta_graph_pb2.SignatureDef] = dict(meta_graph.signature_def)
    graph.finalize()  # requests never add ops: a growing graph would be a leak
    self.input_specs: Dict[str, Dict[str, tf.TensorSpec]] = {
        k: {name: _spec(info) for name, info in sd.inputs.items()}
        for k, sd in self.signature_defs.items()}
    self.output_names: Dict[str, Tuple[str, ...]] = {
        k: tuple(sorted(sd.outputs)) for k, sd in self.signature_defs.items()}
    self._callables: Dict[Tuple[str, Tuple[str, ...]], Tuple[Tuple[str, ...], Callable]] = {}
    self._lock = threading.Lock()
    self.refs = 0

  def __repr__(self) -> str:
    return f"Servable({self.model_name!r}, version={self.version})"

  @property
  def signature_names(self) -> Tuple[str, ...]:
    return tuple(sorted(self.signature_defs))

  def resolve(self, signature_name: str) -> str:
    """'' means serving_default (TF Serving); unknown names are NOT_FOUND."""
    name = signature_name or DEFAULT_SIGNATURE
    if name not in self.signature_defs:
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

  def _callable(self, signature: str, outputs: Tuple[str, ...]):
    """(input names, Session callable) for a signature and output subset, built once."""
    key = (signature, outputs)
    found = self._callables.get(key)
    if found is None:
      with self._lock:
        found = self._callables.get(key)
        if found is None:
          sd = self.signature_defs[signature]
          names = tuple(sorted(sd.inputs))
          # A CallableOptions callable feeds numpy arrays straight to TF_SessionRunCallable;
          # Session.make_callable with feeds falls back to Session.run's Python feed and fetch
          # handling, which costs as much as the model itself on a 1-row request.
          fn = self._session._make_callable_from_options(  # pylint: disable=protected-access
              config_pb2.CallableOptions(feed=[sd.inputs[k].name for k in names],
                                         fetch=[sd.outputs[k].name for k in outputs]))
          found = self._callables[key] = (names, fn)
    return found

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
      feeds[name] = _as_feed(name, arr, spec.dtype)
    wanted = tuple(output_filter)
    outputs_known = self.output_names[signature]
    bad = sorted(set(wanted) - set(outputs_known))
    if bad:
      raise invalid(f"output_filter names unknown output(s) {bad}; signature '{signature}' "
                    f"has {list(outputs_known)}")
    keep = tuple(dict.fromkeys(wanted)) or outputs_known
    names, fn = self._callable(signature, keep)
    try:
      values = fn(*(feeds[n] for n in names))
    except tf.errors.OpError as e:
      raise from_tf_error(e, f"signature '{signature}'") from None
    except (TypeError, ValueError) as e:
      raise invalid(f"signature '{signature}': {e}") from None
    return dict(zip(keep, values))

  def unload(self) -> None:
    """Closes the Session; called once no request holds this version (ModelManager)."""
    self._callables.clear()
    self._session.close()


def _as_feed(name: str, arr: np.ndarray, dtype: tf.DType) -> np.ndarray:
  """`arr` as the numpy value a `dtype` placeholder accepts; INVALID_ARGUMENT if it cannot be."""
  try:
    if dtype == tf.string:
      if arr.dtype.kind not in "OSU":
        raise TypeError(f"got {arr.dtype} values")
      return arr.astype(object) if arr.dtype.kind == "U" else arr
    value = np.asarray(arr)
    if value.dtype.kind in "OSU":
      raise TypeError(f"got {value.dtype} values")
    target = dtype.as_numpy_dtype
    cast = value.astype(target)
    if value.dtype.kind == "f" and np.dtype(target).kind in "iub" and \
        not np.array_equal(cast, value):
      raise ValueError("non-integral values")
    return cast
  except (TypeError, ValueError) as e:
    raise invalid(f"input '{name}' cannot be a {dtype.name} tensor: {e}") from None
