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

import ctypes
import ctypes.util
import gc
import math
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
# What TF Serving exposes: predict/regress/classify signatures, never internal ones such as
# `__saved_model_init_op` (a TF1 loader's meta graph lists it beside the real signatures).
SERVING_METHODS = ("tensorflow/serving/predict", REGRESS_METHOD, "tensorflow/serving/classify")
_PARSE_OPS = {"ParseExample", "ParseExampleV2", "ParseSingleExample"}
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
    self.signature_defs: Dict[str, meta_graph_pb2.SignatureDef] = {
        k: v for k, v in meta_graph.signature_def.items()
        if not k.startswith("__") and v.method_name in SERVING_METHODS}
    # String inputs the graph parses as tf.Examples: their float values are checked for NaN/inf.
    self.example_inputs = {(k, name) for k, sd in self.signature_defs.items()
                           for name, info in sd.inputs.items()
                           if info.dtype == tf.string.as_datatype_enum
                           and _feeds_parse_example(graph, info.name)}
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
      if (signature, name) in self.example_inputs:
        _check_examples_finite(name, feeds[name])
      elif spec.dtype.is_floating:
        _check_finite(name, feeds[name])
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

  def warm_up(self) -> None:
    """Builds every signature's callable and runs it on an empty batch, before any request.

    The first run of a Session callable prunes the graph and creates its executors (tens to
    hundreds of ms); done here, on the loading thread, the swap costs live traffic nothing.
    Best effort: a signature that cannot take an empty batch is simply built, not run.
    """
    for signature, specs in self.input_specs.items():
      names, fn = self._callable(signature, self.output_names[signature])
      try:
        empty = [np.zeros([0] + [d or 1 for d in specs[n].shape.as_list()[1:]],
                          dtype=object if specs[n].dtype == tf.string
                          else specs[n].dtype.as_numpy_dtype) for n in names]
        fn(*empty)
      except (tf.errors.OpError, ValueError, TypeError):
        pass

  def unload(self) -> None:
    """Closes the Session and hands its memory back; called once no request holds this version.

    Closing the Session frees the TF runtime's state, but the graph and callables stay alive
    until Python drops them, and glibc keeps freed arenas mapped: without the collect and the
    trim RSS grew by ~24 MB per swap (serving/README.md, "Memory across swaps").
    """
    self._callables.clear()
    self._session.close()
    self._session = None
    gc.collect()
    trim_malloc()


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


def trim_malloc() -> None:
  """Returns freed heap pages to the OS (glibc malloc_trim); a no-op on other C libraries."""
  name = ctypes.util.find_library("c")
  try:
    ctypes.CDLL(name).malloc_trim(0)
  except (OSError, AttributeError, TypeError):
    pass


def _feeds_parse_example(graph: tf.Graph, tensor_name: str) -> bool:
  """Whether the placeholder reaches a ParseExample op, directly or in a function it calls."""
  try:
    frontier = [graph.get_tensor_by_name(tensor_name).op]
  except (KeyError, ValueError):
    return False
  functions = {f.signature.name: f for f in graph.as_graph_def().library.function}
  for _ in range(6):
    nxt = []
    for op in frontier:
      for out in op.outputs:
        for consumer in out.consumers():
          if consumer.type in _PARSE_OPS:
            return True
          if consumer.type in ("PartitionedCall", "StatefulPartitionedCall"):
            if _function_parses(functions, consumer.get_attr("f").name, depth=0):
              return True
          elif consumer.type in ("Identity", "IdentityN"):
            nxt.append(consumer)
    frontier = nxt
  return False


def _function_parses(functions, name: str, depth: int) -> bool:
  fdef = functions.get(name)
  if fdef is None or depth > 8:
    return False
  for node in fdef.node_def:
    if node.op in _PARSE_OPS:
      return True
    called = node.attr["f"].func.name if "f" in node.attr else (
        node.op if node.op in functions else "")
    if called and _function_parses(functions, called, depth + 1):
      return True
  return False


def _check_finite(name: str, arr: np.ndarray) -> None:
  if arr.size and not np.isfinite(arr).all():
    bad = arr.ravel()[~np.isfinite(arr.ravel())][0]
    raise invalid(f"input '{name}' holds a non-finite value ({bad}); NaN/inf are refused "
                  "(leave an optional feature out to mark it missing)")


def _check_examples_finite(name: str, serialized: np.ndarray) -> None:
  """NaN/inf inside the float features of serialized tf.Examples; names row and feature."""
  from tensorflow.core.example import example_pb2
  for i, data in enumerate(serialized.ravel()):
    try:
      example = example_pb2.Example.FromString(data)
    except Exception:  # pylint: disable=broad-except  # the parse op reports it by row
      continue
    for key, feature in example.features.feature.items():
      for v in feature.float_list.value:
        if not math.isfinite(v):
          raise invalid(f"input '{name}' row {i}: feature '{key}' holds a non-finite value "
                        f"({v}); NaN/inf are refused (leave an optional feature out of the "
                        "tf.Example to mark it missing)")
