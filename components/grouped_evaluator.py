"""Evaluator that gates every large-enough group on RMSE against the baseline.

The stock Evaluator's eval_config is frozen when the pipeline is built, before the Grouping
component has counted how many eval rows each group has. This subclass adds the grouping
artifact as a tracked input (same pattern as components/grouping_inputs.py) and a `group_gate`
parameter; at run time its executor reads the eval-split counts from the artifact's summary and
adds one TFMA RMSE change threshold per group with at least `min_examples` rows
(pipeline/eval_config.add_group_thresholds). Smaller groups are still sliced and reported, they
just carry no threshold. The Evaluator itself (TFMA) then decides the blessing, so Pusher's
`model_blessing` input works the same on every orchestrator.

The decision is written next to the TFMA output as `group_gate.json` and recorded on the
blessing artifact (`gated_groups`, `ungated_groups`).
"""
from __future__ import annotations

import json
import logging
import os
from typing import List

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.context_managers import dsl_context_registry
from tfx.types import artifact_utils, component_spec, standard_component_specs
from tfx.utils import json_utils, proto_utils

from components.grouping import store
from components.grouping.artifact_types import GroupingModel
from pipeline import eval_config as eval_config_lib
from pipeline.eval_results import GATE_FILE

log = logging.getLogger(__name__)

GROUPING_KEY = "grouping"
GROUP_GATE_KEY = "group_gate"
DEFAULT_SPLITS = ["eval"]


class GroupedEvaluatorSpec(standard_component_specs.EvaluatorSpec):
  PARAMETERS = {**standard_component_specs.EvaluatorSpec.PARAMETERS,
                GROUP_GATE_KEY: component_spec.ExecutionParameter(type=str)}
  INPUTS = {**standard_component_specs.EvaluatorSpec.INPUTS,
            GROUPING_KEY: component_spec.ChannelParameter(type=GroupingModel)}


def eval_counts(grouping_uri: str, splits: List[str]) -> List[int]:
  """Rows per group id in the evaluated splits, from the grouping artifact's summary."""
  counts = store.load_summary(grouping_uri).get("counts", {})
  missing = [s for s in splits if s not in counts]
  if missing:
    raise eval_config_lib.EvalConfigError(
        f"grouping artifact {grouping_uri}: summary has no counts for split(s) {missing} "
        f"(has {sorted(counts)}); the Evaluator evaluates {splits}")
  total = [0] * max(len(counts[s]) for s in splits)
  for s in splits:
    for g, n in enumerate(counts[s]):
      total[g] += int(n)
  return total


class GroupedEvaluatorExecutor(evaluator_executor.Executor):
  """Stock Evaluator executor with per-group thresholds added from the grouping artifact."""

  def Do(self, input_dict, output_dict, exec_properties):
    grouping = artifact_utils.get_single_instance(input_dict.pop(GROUPING_KEY))
    gate = eval_config_lib.GroupGate.from_json(exec_properties[GROUP_GATE_KEY])
    splits = json_utils.loads(
        exec_properties.get(standard_component_specs.EXAMPLE_SPLITS_KEY) or "null") or DEFAULT_SPLITS
    config = tfma.EvalConfig()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.EVAL_CONFIG_KEY], config)
    decision = eval_config_lib.add_group_thresholds(
        config, eval_counts(grouping.uri, splits), gate)
    log.info("group gate: RMSE may worsen by at most %.0f%% on groups %s (>= %d eval rows); "
             "reported, not gated: %s", 100 * gate.relative_tolerance, decision["gated"],
             gate.min_examples, decision["not_gated"])
    props = {**exec_properties,
             standard_component_specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(config)}
    props.pop(GROUP_GATE_KEY)
    super().Do(input_dict, output_dict, props)

    evaluation = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EVALUATION_KEY])
    with tf.io.gfile.GFile(os.path.join(evaluation.uri, GATE_FILE), "w") as f:
      json.dump(decision, f, indent=1)
    for blessing in output_dict.get(standard_component_specs.BLESSING_KEY, []):
      blessing.set_string_custom_property("gated_groups", json.dumps(decision["gated"]))
      blessing.set_string_custom_property("ungated_groups", json.dumps(decision["not_gated"]))


class GroupedEvaluator(tfx.components.Evaluator):
  """tfx.components.Evaluator plus a `grouping` input and a per-group gate (see module doc)."""
  SPEC_CLASS = GroupedEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(GroupedEvaluatorExecutor)

  def __init__(self, *, grouping, group_gate: eval_config_lib.GroupGate, **evaluator_kwargs):
    with dsl_context_registry.new_registry():  # a throw-away node, kept out of the pipeline
      stock = tfx.components.Evaluator(**evaluator_kwargs)  # validates the stock arguments
    s = stock.spec
    outputs = {key: tfx.dsl.Channel(type=ch.type) for key, ch in s.outputs.items()}
    super(tfx.components.Evaluator, self).__init__(  # pylint: disable=bad-super-call
        spec=GroupedEvaluatorSpec(**s.exec_properties, **s.inputs, **outputs, grouping=grouping,
                                  group_gate=group_gate.to_json()))
