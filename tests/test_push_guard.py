"""GuardedPusher's executor on a real SavedModel: the first push writes a version; pushing the
identical model again writes none and records which version already serves it; a different
model is pushed."""
import os
import time

import tensorflow as tf
from tfx.types import standard_artifacts, standard_component_specs as specs
from tfx.proto import pusher_pb2
from tfx.utils import proto_utils

from components import push_guard
from pipeline import component_results


def _saved_model(uri, w):
  m = tf.Module()
  m.w = tf.Variable(w)
  m.f = tf.function(lambda x: x * m.w, input_signature=[tf.TensorSpec([None], tf.float32)])
  tf.saved_model.save(m, os.path.join(uri, "Format-Serving"))


def _push(tmp_path, name, w, dest):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / name)
  _saved_model(model.uri, w)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / (name + "_blessing"))
  blessing.set_int_custom_property("blessed", 1)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / (name + "_pushed"))
  props = {specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=dest)))}
  push_guard.Executor().Do({specs.MODEL_KEY: [model], specs.MODEL_BLESSING_KEY: [blessing]},
                           {specs.PUSHED_MODEL_KEY: [pushed]}, props)
  return pushed


def test_identical_model_is_not_pushed_again(tmp_path):
  dest = str(tmp_path / "serving")
  first = _push(tmp_path, "a", 2.0, dest)
  assert first.get_int_custom_property("pushed") == 1
  (version,) = os.listdir(dest)
  assert component_results.pushed(first, None) == f"pushed version {version}"
  same = _push(tmp_path, "b", 2.0, dest)     # retrained, byte-identical weights
  assert same.get_int_custom_property("pushed") == 0
  assert same.get_string_custom_property(push_guard.UNCHANGED_PROPERTY) == version
  assert os.listdir(dest) == [version]
  # the console line says why nothing was pushed: not "not blessed" for a blessed model
  assert component_results.pushed(same, None) == (
      f"nothing pushed: unchanged (same as version {version})")
  refused = standard_artifacts.PushedModel()               # what the Pusher records unblessed
  refused.set_int_custom_property("pushed", 0)
  assert component_results.pushed(refused, None) == "nothing pushed (not blessed)"
  time.sleep(1.1)   # the stock Pusher's versions are Unix seconds
  other = _push(tmp_path, "c", 3.0, dest)
  assert other.get_int_custom_property("pushed") == 1
  assert len(os.listdir(dest)) == 2
