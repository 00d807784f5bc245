"""Beam: config `beam.args` reach every Beam-using component, ours included, on every runner.

The Flink/Spark/Dataflow presets are read from docs/orchestration.md, so what the docs tell
a platform team to paste is exactly what is tested. No cluster: the args are followed into
LocalDagRunner's compiled IR, into the Kubeflow container args, and (Flink, Spark) into the
Beam pipeline our Grouping executor builds through the launcher's own code path.
Dataflow is not constructed here: its option validation calls Google Cloud Storage.
"""
from __future__ import annotations

import json
import os
import re
from typing import Dict, List

import pytest
from apache_beam.options import pipeline_options
from tfx.dsl.compiler import compiler, placeholder_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import beam_executor_operator, data_types

from pipeline import kubeflow_runner
from pipeline.config import REPO_ROOT, load_config
from pipeline.from_config import pipeline_args
from pipeline.pipeline import create_pipeline
from tests.orchestration.conftest import BEAM_COMPONENTS

DOC = os.path.join(REPO_ROOT, "docs", "orchestration.md")
PRESET_RE = re.compile(r"<!-- beam-preset: (\S+) -->\s*```yaml\n(.*?)```", re.S)


def documented_presets() -> Dict[str, List[str]]:
  import yaml  # pylint: disable=g-import-not-at-top
  with open(DOC) as f:
    return {name: yaml.safe_load(block)["beam"]["args"]
            for name, block in PRESET_RE.findall(f.read())}


PRESETS = documented_presets()


def test_docs_cover_the_cluster_runners():
  assert {"flink", "spark", "dataflow"} <= set(PRESETS), sorted(PRESETS)


def _config(args):
  return load_config("configs/ames.yaml", overrides={"beam.args": args})


def _beam_specs(cfg):
  """node id -> BeamExecutableSpec, from the IR LocalDagRunner executes."""
  ir = compiler.Compiler().compile(create_pipeline(**pipeline_args(cfg)))
  specs = runner_utils.extract_local_deployment_config(ir).executor_specs
  return {node: spec.beam_executable_spec for node, spec in specs.items()
          if spec.WhichOneof("spec") == "beam_executable_spec"}


def _launcher_args(spec) -> List[str]:
  """The args BeamExecutorOperator hands the executor (resolved as in run_executor)."""
  operator = beam_executor_operator.BeamExecutorOperator(spec)
  context = placeholder_utils.ResolutionContext(exec_info=data_types.ExecutionInfo(
      input_dict={}, output_dict={}, exec_properties={}))
  return [placeholder_utils.resolve_placeholder_expression(p, context)
          for p in operator.beam_pipeline_args]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_reaches_every_beam_node_of_the_local_ir(name):
  specs = _beam_specs(_config(PRESETS[name]))
  assert set(specs) == set(BEAM_COMPONENTS)
  for node, spec in specs.items():
    assert _launcher_args(spec) == PRESETS[name], node


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_reaches_every_beam_container_on_kubeflow(name, tmp_path):
  paths = kubeflow_runner.compile_pipeline(_config(PRESETS[name]), str(tmp_path),
                                           image="registry.example.com/grouped-regression:1.0")
  with open(paths["json"]) as f:
    spec = json.load(f)["pipelineSpec"]
  executors = spec["deploymentSpec"]["executors"]
  for task in BEAM_COMPONENTS:
    container = executors[spec["components"][task]["executorLabel"]]["container"]
    assert container["args"][-len(PRESETS[name]):] == PRESETS[name], task


@pytest.mark.parametrize("name", [n for n in sorted(PRESETS) if n != "dataflow"])
def test_our_executor_builds_its_pipeline_on_the_configured_runner(name, tmp_path):
  spec = _beam_specs(_config(PRESETS[name]))["Grouping"]
  operator = beam_executor_operator.BeamExecutorOperator(spec)
  executor = operator._executor_cls(  # pylint: disable=protected-access
      context=base_beam_executor.BaseBeamExecutor.Context(
          beam_pipeline_args=_launcher_args(spec), tmp_dir=str(tmp_path)))
  assert type(executor).__module__ == "components.grouping.executor"
  pipeline = executor._make_beam_pipeline()  # pylint: disable=protected-access
  options = pipeline.options.get_all_options()
  assert type(pipeline.runner).__name__ == options["runner"]
  for arg in PRESETS[name]:
    key, _, value = arg[2:].partition("=")
    got = options[key]
    assert value in got if isinstance(got, list) else str(got) == value, (key, got)


def test_dataflow_preset_parses_to_the_documented_options():
  options = pipeline_options.PipelineOptions(PRESETS["dataflow"])
  gcp = options.view_as(pipeline_options.GoogleCloudOptions)
  assert options.view_as(pipeline_options.StandardOptions).runner == "DataflowRunner"
  assert gcp.project and gcp.region and gcp.temp_location.startswith("gs://")
  worker = options.view_as(pipeline_options.WorkerOptions)
  assert worker.sdk_container_image, "workers need the project image to import our DoFns"
