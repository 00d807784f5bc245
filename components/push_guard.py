"""GuardedPusher: the stock Pusher, except that a model identical to the latest pushed version
is not pushed again (every model server would hot-swap for nothing).

An unchanged rerun typically re-runs the Evaluator (its baseline is now the model it blessed
last time) and so the Pusher, with the same cached Trainer model. The executor compares a
content fingerprint of the SavedModel with the newest numeric version directory under the
filesystem push destination; when they match it records the PushedModel artifact as not
pushed, with `unchanged_version` naming the version already serving it, and logs
"unchanged, not pushed". It is an executor swap, so MLMD records it on every orchestrator.
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils
from tfx.v1.components import Pusher

log = logging.getLogger(__name__)
UNCHANGED_PROPERTY = "unchanged_version"


def _files(root: str, sub: str) -> List[str]:
  base = os.path.join(root, sub)
  if not fileio.exists(base):
    return []
  out = []
  for dirpath, _, names in fileio.walk(base):
    out.extend(os.path.join(dirpath, n) for n in names)
  return sorted(out)


def model_fingerprint(model_dir: str) -> Optional[str]:
  """sha256 over the SavedModel's content: the graph-program and signature hashes of
  fingerprint.pb (which ignore process-dependent function names) when present, else
  saved_model.pb's bytes;
  plus the bytes of every file under variables/ and assets/. None if no SavedModel is there."""
  pb = os.path.join(model_dir, "saved_model.pb")
  if not fileio.exists(pb):
    return None
  h = hashlib.sha256()
  fp_path = os.path.join(model_dir, "fingerprint.pb")
  if fileio.exists(fp_path):
    from tensorflow.core.protobuf import fingerprint_pb2  # pylint: disable=g-import-not-at-top
    fp = fingerprint_pb2.FingerprintDef()
    with fileio.open(fp_path, "rb") as f:
      fp.ParseFromString(f.read())
    # Not saved_object_graph_hash: it differs between two exports of identical weights and
    # graphs (it hashes process-dependent function names), so every rerun would look new.
    h.update(f"{fp.graph_def_program_hash}:{fp.signature_def_hash}".encode())
  else:
    with fileio.open(pb, "rb") as f:
      h.update(f.read())
  for sub in ("variables", "assets"):
    for path in _files(model_dir, sub):
      h.update(os.path.relpath(path, model_dir).encode())
      with fileio.open(path, "rb") as f:
        h.update(f.read())
  return h.hexdigest()


def latest_version_dir(base_directory: str) -> Optional[str]:
  if not fileio.exists(base_directory):
    return None
  versions = [v.rstrip("/") for v in fileio.listdir(base_directory) if v.rstrip("/").isdigit()]
  return os.path.join(base_directory, max(versions, key=int)) if versions else None


class Executor(pusher_executor.Executor):
  """Stock push, unless the blessed model equals the newest pushed version."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    dest = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
                              dest)
    if dest.WhichOneof("destination") == "filesystem" and self.CheckBlessing(input_dict):
      latest = latest_version_dir(dest.filesystem.base_directory)
      if latest:
        new = model_fingerprint(self.GetModelPath(input_dict))
        if new is not None and new == model_fingerprint(latest):
          model_push = artifact_utils.get_single_instance(
              output_dict[standard_component_specs.PUSHED_MODEL_KEY])
          self._MarkNotPushed(model_push)
          model_push.set_string_custom_property(UNCHANGED_PROPERTY, os.path.basename(latest))
          log.warning("model unchanged, not pushed: identical to version %s",
                      os.path.basename(latest))
          return
    super().Do(input_dict, output_dict, exec_properties)


class GuardedPusher(Pusher):
  """tfx.components.Pusher with the no-duplicate-push executor."""
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
