"""Runs the real grouping executor outside a pipeline, on an existing Examples directory.

For benchmarks, notebooks and tests that want the component's exact behaviour (Beam passes,
artifact files, report) without an orchestrator or ML Metadata.
"""
from __future__ import annotations

import json
import os
from typing import Callable, List, Optional, Sequence, Tuple

from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.grouping import component, executor
from components.grouping.artifact_types import GroupingModel


def examples_artifact(uri: str, splits: Sequence[str]) -> standard_artifacts.Examples:
  """An Examples artifact over <uri>/Split-<name>/ directories of tf.Example TFRecords."""
  ex = standard_artifacts.Examples()
  ex.uri = uri
  ex.split_names = artifact_utils.encode_split_names(list(splits))
  examples_utils.set_payload_format(ex, example_gen_pb2.FORMAT_TF_EXAMPLE)
  return ex


def build(examples_uri: str, splits: Sequence[str], output_dir: str,
          beam_pipeline_args: Optional[List[str]] = None,
          **component_args) -> Tuple[Callable[[], None], str]:
  """The executor ready to run: (do, grouping artifact URI).

  component_args are the Grouping component's (mode, features, k_values, seed, ...). With no
  beam_pipeline_args Beam runs in process (DirectRunner, in_memory) and TFX skips building its
  ephemeral sdist, which only remote runners need.
  """
  grouping = GroupingModel()
  grouping.uri = os.path.join(output_dir, "grouping")
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=beam_pipeline_args or [],
      tmp_dir=os.path.join(output_dir, "tmp"), unique_id="grouping")
  config = component.make_config(**component_args)
  ex = executor.Executor(context)
  inputs = {executor.EXAMPLES_KEY: [examples_artifact(examples_uri, splits)]}
  outputs = {executor.GROUPING_KEY: [grouping]}
  props = {executor.CONFIG_KEY: json.dumps(config, sort_keys=True)}
  return (lambda: ex.Do(inputs, outputs, props)), grouping.uri


def run(examples_uri: str, splits: Sequence[str], output_dir: str,
        beam_pipeline_args: Optional[List[str]] = None, **component_args) -> str:
  """Runs Executor.Do; returns the grouping artifact URI."""
  do, grouping_uri = build(examples_uri, splits, output_dir, beam_pipeline_args,
                           **component_args)
  do()
  return grouping_uri
