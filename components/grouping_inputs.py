"""Transform and Trainer that take the grouping artifact as a tracked input.

Stock Transform/Trainer accept no extra artifact, and their `custom_config` is frozen when the
pipeline is built, before K-Means has run. These thin subclasses add a `grouping` input channel
(recorded in MLMD like any input, so caching and lineage see it) and hand its URI to the user
functions as `custom_config["grouping_uri"]`. Everything else is the stock component, so they
compile for Kubeflow V2 and Airflow like the originals.
"""
from __future__ import annotations

import json
from typing import Any, Dict

from tfx import v1 as tfx
from tfx.components.trainer import executor as trainer_executor
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.context_managers import dsl_context_registry
from tfx.types import artifact_utils, component_spec, standard_component_specs

from components.grouping.artifact_types import GroupingModel

GROUPING_KEY = "grouping"
GROUPING_URI = "grouping_uri"
_GROUPING_INPUT = {GROUPING_KEY: component_spec.ChannelParameter(type=GroupingModel)}


def _with_grouping_uri(input_dict, exec_properties) -> Dict[str, Any]:
  """exec_properties whose custom_config carries the grouping artifact's URI."""
  grouping = artifact_utils.get_single_instance(input_dict.pop(GROUPING_KEY))
  key = standard_component_specs.CUSTOM_CONFIG_KEY
  config = json.loads(exec_properties.get(key) or "null") or {}
  config[GROUPING_URI] = grouping.uri
  return {**exec_properties, key: json.dumps(config)}


def _rebuild_spec(stock, spec_class, grouping):
  """The stock component's spec plus the grouping input, with fresh output channels."""
  s = stock.spec
  outputs = {}
  for key, ch in s.outputs.items():
    fresh = tfx.dsl.Channel(type=ch.type)
    fresh.matching_channel_name = getattr(ch, "matching_channel_name", None)
    outputs[key] = fresh
  return spec_class(**s.exec_properties, **s.inputs, **outputs, grouping=grouping)


class GroupedTransformSpec(standard_component_specs.TransformSpec):
  INPUTS = {**standard_component_specs.TransformSpec.INPUTS, **_GROUPING_INPUT}


class GroupedTransformExecutor(transform_executor.Executor):

  def Do(self, input_dict, output_dict, exec_properties):
    return super().Do(input_dict, output_dict, _with_grouping_uri(input_dict, exec_properties))


class GroupedTransform(tfx.components.Transform):
  """tfx.components.Transform whose preprocessing_fn sees custom_config['grouping_uri']."""
  SPEC_CLASS = GroupedTransformSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(GroupedTransformExecutor)

  def __init__(self, *, grouping, **transform_kwargs):
    with dsl_context_registry.new_registry():  # a throw-away node, kept out of the pipeline
      stock = tfx.components.Transform(**transform_kwargs)  # validates the stock arguments
    super(tfx.components.Transform, self).__init__(  # pylint: disable=bad-super-call
        spec=_rebuild_spec(stock, GroupedTransformSpec, grouping))


class GroupedTrainerSpec(standard_component_specs.TrainerSpec):
  INPUTS = {**standard_component_specs.TrainerSpec.INPUTS, **_GROUPING_INPUT}


class GroupedTrainerExecutor(trainer_executor.GenericExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    return super().Do(input_dict, output_dict, _with_grouping_uri(input_dict, exec_properties))


class GroupedTrainer(tfx.components.Trainer):
  """tfx.components.Trainer whose run_fn sees fn_args.custom_config['grouping_uri']."""
  SPEC_CLASS = GroupedTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(GroupedTrainerExecutor)

  def __init__(self, *, grouping, **trainer_kwargs):
    with dsl_context_registry.new_registry():
      stock = tfx.components.Trainer(**trainer_kwargs)
    super(tfx.components.Trainer, self).__init__(
        spec=_rebuild_spec(stock, GroupedTrainerSpec, grouping))
