"""Runs the real GroupedEvaluator executor (stock TFX Evaluator + TFMA) on tiny hand-built inputs:
a `test` split of tf.Examples, SavedModels with the pipeline's contract (`serving_default` and
`transform_features` on serialized tf.Examples) and a grouping artifact holding only the test
counts the gate reads. Shared by the evaluator tests that need exact, computable metrics."""
from __future__ import annotations

import os
from typing import Dict, Iterable, Optional, Sequence

import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components import grouped_evaluator
from components.group_gate import GroupGate
from components.grouping import store
from components.grouping.artifact_types import GroupingModel


def save_model(uri: str, module: tf.Module) -> standard_artifacts.Model:
  """A Model artifact at `uri` whose Format-Serving holds `module`'s two signatures."""
  model = standard_artifacts.Model()
  model.uri = uri
  tf.saved_model.save(module, os.path.join(uri, "Format-Serving"), signatures={
      "serving_default": module.serving_default.get_concrete_function(),
      "transform_features": module.transform_features.get_concrete_function()})
  return model


def write_test_split(root: str, rows: Iterable[Dict[str, float]]) -> standard_artifacts.Examples:
  """An Examples artifact with one gzipped `test` split of float features."""
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(root, "examples")
  examples.split_names = artifact_utils.encode_split_names(["test"])
  os.makedirs(os.path.join(examples.uri, "Split-test"))
  with tf.io.TFRecordWriter(os.path.join(examples.uri, "Split-test", "data.gz"), "GZIP") as w:
    for row in rows:
      ex = tf.train.Example()
      for name, value in row.items():
        ex.features.feature[name].float_list.value.append(float(value))
      w.write(ex.SerializeToString())
  return examples


def evaluate(root: str, examples: standard_artifacts.Examples, model: standard_artifacts.Model,
             test_groups: Sequence[int], config, baseline: Optional[standard_artifacts.Model] = None,
             min_examples: int = 10):
  """GroupedEvaluatorExecutor.Do on the test split; (evaluation uri, blessed)."""
  grouping = GroupingModel()
  grouping.uri = os.path.join(root, "grouping")
  os.makedirs(grouping.uri)
  store.write_summary(grouping.uri, {"counts": {"test": np.bincount(test_groups).tolist()}})
  evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
  evaluation.uri, blessing.uri = os.path.join(root, "eval"), os.path.join(root, "blessing")
  os.makedirs(evaluation.uri)
  os.makedirs(blessing.uri)
  inputs = {standard_component_specs.EXAMPLES_KEY: [examples],
            standard_component_specs.MODEL_KEY: [model],
            grouped_evaluator.GROUPING_KEY: [grouping]}
  if baseline is not None:
    inputs[standard_component_specs.BASELINE_MODEL_KEY] = [baseline]
  grouped_evaluator.GroupedEvaluatorExecutor().Do(
      inputs,
      {standard_component_specs.EVALUATION_KEY: [evaluation],
       standard_component_specs.BLESSING_KEY: [blessing]},
      {standard_component_specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(config),
       standard_component_specs.EXAMPLE_SPLITS_KEY: '["test"]',
       grouped_evaluator.GROUP_GATE_KEY: GroupGate(min_examples=min_examples).to_json()})
  return evaluation.uri, os.path.exists(os.path.join(blessing.uri, "BLESSED"))


# The input signature of both contract signatures: a batch of serialized tf.Examples.
EXAMPLES_SPEC = [tf.TensorSpec([None], tf.string, name="examples")]


def parse_x(examples: tf.Tensor) -> tf.Tensor:
  """The float feature `x` of a batch of serialized tf.Examples."""
  return tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([], tf.float32)})["x"]
