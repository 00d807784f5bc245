"""Transform and Trainer that take the grouping artifact as a tracked input.

Stock Transform/Trainer accept no extra artifact, and their `custom_config` is frozen when the
pipeline is built, before K-Means has run. These thin subclasses add a `grouping` input channel
(recorded in MLMD like any input, so caching and lineage see it) and hand its URI to the user
functions as `custom_config["grouping_uri"]`. Everything else is the stock component, so they
compile for Kubeflow V2 and Airflow like the originals. `with_grouping_input` is the one
construction trick they (and components/grouped_evaluator.py) share.
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

from components import code_version
from components.grouping.artifact_types import GroupingModel

GROUPING_KEY = "grouping"
GROUPING_URI = "grouping_uri"
GROUPING_INPUT = {GROUPING_KEY: component_spec.ChannelParameter(type=GroupingModel)}


def _with_grouping_uri(input_dict, exec_properties) -> Dict[str, Any]:
  """exec_properties whose custom_config carries the grouping artifact's URI."""
  grouping = artifact_utils.get_single_instance(input_dict.pop(GROUPING_KEY))
  key = standard_component_specs.CUSTOM_CONFIG_KEY
  config = json.loads(exec_properties.get(key) or "null") or {}
  config[GROUPING_URI] = grouping.uri
  return {**exec_properties, key: json.dumps(config)}


def with_grouping_input(component, stock_class, spec_class, grouping, stock_kwargs,
                        **extra_params) -> None:
  """Initialises `component` (a subclass of `stock_class`) as the stock component built from
  `stock_kwargs`, plus the `grouping` input channel and `extra_params` in `spec_class`.

  The stock constructor runs first, in a throw-away DSL registry (it validates the arguments
  and builds the spec; the node itself stays out of the pipeline). Its spec is then re-created
  as `spec_class` with fresh output channels, and the base-of-the-stock-class constructor is
  called directly, so the node id stays the subclass name (what KFP and Airflow use).
  """
  with dsl_context_registry.new_registry():
    stock = stock_class(**stock_kwargs)
  s = stock.spec
  outputs = {}
  for key, ch in s.outputs.items():
    fresh = tfx.dsl.Channel(type=ch.type)
    fresh.matching_channel_name = getattr(ch, "matching_channel_name", None)
    outputs[key] = fresh
  spec = spec_class(**s.exec_properties, **s.inputs, **outputs, grouping=grouping,
                    **extra_params)
  super(stock_class, component).__init__(spec=spec)  # pylint: disable=bad-super-call


def _code_version(kwargs: Dict[str, Any], fn_key: str) -> Dict[str, str]:
  """{code_version: ...} for a user function named by dotted path (`fn_key`); {} for a
  `module_file`, whose text TFX's cache key already covers."""
  fn = kwargs.get(fn_key)
  return {code_version.CODE_VERSION_KEY: code_version.of_function(fn)} if fn else {}


class GroupedTransformSpec(standard_component_specs.TransformSpec):
  PARAMETERS = {**standard_component_specs.TransformSpec.PARAMETERS, **code_version.PARAMETER}
  INPUTS = {**standard_component_specs.TransformSpec.INPUTS, **GROUPING_INPUT}


class GroupedTransformExecutor(transform_executor.Executor):

  def Do(self, input_dict, output_dict, exec_properties):
    return super().Do(input_dict, output_dict, _with_grouping_uri(input_dict, exec_properties))


class GroupedTransform(tfx.components.Transform):
  """tfx.components.Transform whose preprocessing_fn sees custom_config['grouping_uri']."""
  SPEC_CLASS = GroupedTransformSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(GroupedTransformExecutor)

  def __init__(self, *, grouping, **transform_kwargs):
    with_grouping_input(self, tfx.components.Transform, GroupedTransformSpec, grouping,
                        transform_kwargs, **_code_version(transform_kwargs, "preprocessing_fn"))


class GroupedTrainerSpec(standard_component_specs.TrainerSpec):
  PARAMETERS = {**standard_component_specs.TrainerSpec.PARAMETERS, **code_version.PARAMETER}
  INPUTS = {**standard_component_specs.TrainerSpec.INPUTS, **GROUPING_INPUT}


class GroupedTrainerExecutor(trainer_executor.GenericExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    return super().Do(input_dict, output_dict, _with_grouping_uri(input_dict, exec_properties))


class GroupedTrainer(tfx.components.Trainer):
  """tfx.components.Trainer whose run_fn sees fn_args.custom_config['grouping_uri']."""
  SPEC_CLASS = GroupedTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(GroupedTrainerExecutor)

  def __init__(self, *, grouping, **trainer_kwargs):
    with_grouping_input(self, tfx.components.Trainer, GroupedTrainerSpec, grouping,
                        trainer_kwargs, **_code_version(trainer_kwargs, "run_fn"))
