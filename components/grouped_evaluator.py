"""Evaluator that gates every large-enough group on RMSE against the baseline, on `test` only.

The stock Evaluator's eval_config is frozen when the pipeline is built, before the Grouping
component has counted how many rows each group has. This subclass adds the grouping artifact as
a tracked input (components/grouping_inputs.with_grouping_input) and a `group_gate` parameter;
at run time its executor reads the evaluated split's counts from the artifact's summary and adds
one TFMA RMSE change threshold per group with at least `min_examples` rows
(components/group_gate.add_group_thresholds). Smaller groups are still sliced and reported, they
just carry no threshold. The Evaluator itself (TFMA) then decides the blessing, so Pusher's
`model_blessing` input works the same on every orchestrator.

Slice membership comes from the candidate alone. TFMA 0.47's SliceKeyExtractor looks a slice
key up in the transformed features of EVERY model spec and takes the union of the values
(slicer/slice_accessor.py), so if both models ran their own `transform_features`, a row whose
K-Means id differs between the two groupings would land in two group slices. The executor
therefore writes two explicit model specs: the candidate keeps `preprocessing_function_names`,
the baseline gets none (and its SavedModel has no `transformed_features` default signature), so
`group_id` is the candidate's assignment and both models are scored on those same rows
(components/evaluator_hooks.py, the component's hook module). A boosted model needs no hook:
TFMA imports tensorflow_decision_forests itself wherever it loads a model.

Too few test rows for the gate (no group reaches `min_examples`) fails the run with the split
and the counts, so nothing is blessed or pushed. The decision is written next to the TFMA
output as `group_gate.json` and recorded on the blessing artifact.
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
from tfx.components.util import udf_utils
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, component_spec, standard_component_specs
from tfx.utils import json_utils, proto_utils

from components import code_version, evaluator_hooks, interval_metrics
from components import group_gate as gate_lib
from components.grouping import store
from components.grouping_inputs import GROUPING_INPUT, GROUPING_KEY, with_grouping_input

log = logging.getLogger(__name__)

GROUP_GATE_KEY = "group_gate"
DEFAULT_SPLITS = ["test"]


class GroupedEvaluatorSpec(standard_component_specs.EvaluatorSpec):
  PARAMETERS = {**standard_component_specs.EvaluatorSpec.PARAMETERS,
                GROUP_GATE_KEY: component_spec.ExecutionParameter(type=str),
                **code_version.PARAMETER}
  INPUTS = {**standard_component_specs.EvaluatorSpec.INPUTS, **GROUPING_INPUT}


def eval_counts(grouping_uri: str, splits: List[str]) -> List[int]:
  """Rows per group id in the evaluated splits, from the grouping artifact's summary."""
  counts = store.load_summary(grouping_uri).get("counts", {})
  missing = [s for s in splits if s not in counts]
  if missing:
    raise gate_lib.EvalConfigError(
        f"grouping artifact {grouping_uri}: summary has no counts for split(s) {missing} "
        f"(has {sorted(counts)}); the Evaluator evaluates {splits}")
  total = [0] * max(len(counts[s]) for s in splits)
  for s in splits:
    for g, n in enumerate(counts[s]):
      total[g] += int(n)
  return total


def check_enough_rows(counts: List[int], splits: List[str], gate: gate_lib.GroupGate) -> None:
  """Refuses to judge when no group has `min_examples` rows in the evaluated split(s)."""
  if sum(counts) == 0 or max(counts, default=0) < gate.min_examples:
    raise gate_lib.EvalConfigError(
        f"split {'+'.join(splits)} has {sum(counts)} rows (per group {counts}): too few for the "
        f"per-group gate, which needs at least one group with min_group_examples="
        f"{gate.min_examples} rows. Nothing is blessed or pushed; use more data or larger "
        f"dataset.split_sizes.test.")


class GroupedEvaluatorExecutor(evaluator_executor.Executor):
  """Stock Evaluator executor with per-group thresholds added from the grouping artifact."""

  def Do(self, input_dict, output_dict, exec_properties):
    grouping = artifact_utils.get_single_instance(input_dict.pop(GROUPING_KEY))
    gate = gate_lib.GroupGate.from_json(exec_properties[GROUP_GATE_KEY])
    splits = json_utils.loads(
        exec_properties.get(standard_component_specs.EXAMPLE_SPLITS_KEY) or "null") or DEFAULT_SPLITS
    config = tfma.EvalConfig()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.EVAL_CONFIG_KEY], config)
    counts = eval_counts(grouping.uri, splits)
    check_enough_rows(counts, splits, gate)
    evaluator_hooks.candidate_only_slicing(
        config, bool(input_dict.get(standard_component_specs.BASELINE_MODEL_KEY)))
    decision = gate_lib.add_group_thresholds(config, counts, gate)
    decision["splits"] = list(splits)
    log.info("group gate on %s: RMSE may worsen by at most %.0f%% on groups %s (>= %d rows); "
             "reported, not gated: %s", splits, 100 * gate.relative_tolerance, decision["gated"],
             gate.min_examples, decision["not_gated"])
    props = {**exec_properties,
             standard_component_specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(config)}
    props.pop(GROUP_GATE_KEY)
    props[standard_component_specs.MODULE_PATH_KEY] = evaluator_hooks.MODULE_PATH
    props.pop(standard_component_specs.MODULE_FILE_KEY, None)
    # The stock executor loads its hooks with udf_utils.try_get_fn, which returns None on any
    # import problem: the run would then silently lose its group slices. Load it loudly first.
    udf_utils.get_fn(props, "custom_extractors")
    super().Do(input_dict, output_dict, props)

    evaluation = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EVALUATION_KEY])
    with tf.io.gfile.GFile(os.path.join(evaluation.uri, gate_lib.GATE_FILE), "w") as f:
      json.dump(decision, f, indent=1)
    for blessing in output_dict.get(standard_component_specs.BLESSING_KEY, []):
      blessing.set_string_custom_property("gated_groups", json.dumps(decision["gated"]))
      blessing.set_string_custom_property("ungated_groups", json.dumps(decision["not_gated"]))


class GroupedEvaluator(tfx.components.Evaluator):
  """tfx.components.Evaluator plus a `grouping` input and a per-group gate (see module doc)."""
  SPEC_CLASS = GroupedEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(GroupedEvaluatorExecutor)

  def __init__(self, *, grouping, group_gate: gate_lib.GroupGate, **evaluator_kwargs):
    # The hooks module (slicing by the candidate's groups) is part of the
    # component: another module_path or module_file would silently drop it (module doc).
    for key in ("module_path", "module_file"):
      if evaluator_kwargs.get(key) not in (None, evaluator_hooks.MODULE_PATH):
        raise ValueError(f"GroupedEvaluator brings its own hook module "
                         f"({evaluator_hooks.MODULE_PATH}); {key}={evaluator_kwargs[key]!r} "
                         "would replace it")
    evaluator_kwargs["module_path"] = evaluator_hooks.MODULE_PATH
    with_grouping_input(self, tfx.components.Evaluator, GroupedEvaluatorSpec, grouping,
                        evaluator_kwargs, group_gate=group_gate.to_json(),
                        code_version=code_version.fingerprint(
                            __name__, evaluator_hooks.MODULE_PATH, interval_metrics.MODULE))
