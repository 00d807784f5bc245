"""Kubeflow Pipelines V2: `make kfp-compile` writes a valid pipeline without a cluster.

The CLI entry point compiles configs/ames.yaml once (as `make kfp-compile` does, plus
submit-style flags); the kfp SDK and the pipeline-spec protos then load what it wrote.
"""
from __future__ import annotations

import json
import os
import sys
from unittest import mock

import kfp.components
import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import kubeflow_runner
from pipeline.config import REPO_ROOT, load_config
from tests.orchestration.conftest import COMPONENTS, RESOLVER

IMAGE = "registry.example/grouped-regression:1.2.3"
PIPELINE_ROOT = "gs://kfp-bucket/grouped-regression"
SERVING_DIR = "gs://kfp-bucket/serving/ames"
CUSTOM_EXECUTORS = {
    "Grouping": "components.grouping.executor.Executor",
    "GroupedTransform": "components.grouping_inputs.GroupedTransformExecutor",
    "GroupedTrainer": "components.grouping_inputs.GroupedTrainerExecutor",
}
GROUPING_TYPE = "grouped_regression.GroupingModel"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
  """What `make kfp-compile` writes (its main(), in this process), with submit-style flags:
  {"json": dict, "yaml": path, "text": raw JSON text}."""
  out = tmp_path_factory.mktemp("kfp")
  argv = ["kubeflow_runner", "--config", "configs/ames.yaml", "--output-dir", str(out),
          "--image", IMAGE, "--pipeline-root", PIPELINE_ROOT, "--serving-model-dir", SERVING_DIR]
  with mock.patch.object(sys, "argv", argv):
    kubeflow_runner.main()
  json_path = out / "grouped-regression-ames.json"
  text = json_path.read_text()
  return {"json": json.loads(text), "yaml": str(out / "grouped-regression-ames.yaml"),
          "text": text}


def _spec(compiled):
  return compiled["json"]["pipelineSpec"]


def _executor_args(compiled, task):
  spec = _spec(compiled)
  label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]][
      "executorLabel"]
  return spec["deploymentSpec"]["executors"][label]["container"]


def test_every_component_is_a_task(compiled):
  tasks = set(_spec(compiled)["root"]["dag"]["tasks"])
  assert set(COMPONENTS) <= tasks
  # the resolver compiles to two KFP importer-style queries (model, blessing)
  assert {t for t in tasks - set(COMPONENTS)} == {
      f"{RESOLVER}-model-resolver", f"{RESOLVER}-model-blessing-resolver"}


def test_custom_executors_run_in_the_project_image(compiled):
  for task, executor in CUSTOM_EXECUTORS.items():
    container = _executor_args(compiled, task)
    assert container["image"] == IMAGE
    assert container["command"] == list(kubeflow_runner.kubeflow_v2_dag_runner.KUBEFLOW_TFX_CMD)
    i = container["args"].index("--executor_class_path")
    assert container["args"][i + 1] == executor, (task, container["args"])


def test_user_function_modules_are_referenced(compiled):
  params = lambda t: _spec(compiled)["root"]["dag"]["tasks"][t]["inputs"]["parameters"]  # noqa
  const = lambda t, k: params(t)[k]["runtimeValue"]["constant"]  # noqa: E731
  assert const("GroupedTransform", "preprocessing_fn") == \
      "models.grouped_regression.preprocessing.preprocessing_fn"
  assert const("GroupedTrainer", "run_fn") == "models.grouped_regression.trainer.run_fn"


def test_grouping_artifact_type_flows_to_transform_and_trainer(compiled):
  spec = _spec(compiled)
  out = spec["components"]["Grouping"]["outputDefinitions"]["artifacts"]["grouping"]
  assert out["artifactType"]["instanceSchema"].startswith(f"title: {GROUPING_TYPE}\n")
  for consumer in ("GroupedTransform", "GroupedTrainer"):
    inputs = spec["root"]["dag"]["tasks"][consumer]["inputs"]["artifacts"]
    assert inputs["grouping"]["taskOutputArtifact"] == {
        "producerTask": "Grouping", "outputArtifactKey": "grouping"}
    declared = spec["components"][consumer]["inputDefinitions"]["artifacts"]["grouping"]
    assert GROUPING_TYPE in declared["artifactType"]["instanceSchema"]


def test_paths_are_runtime_parameters_with_defaults(compiled):
  job = compiled["json"]
  spec = job["pipelineSpec"]
  params = spec["root"]["inputDefinitions"]["parameters"]
  assert params["data_root"]["defaultValue"] == "/pipeline/data/ames"  # baked into the image
  destination = json.loads(params["push_destination"]["defaultValue"])
  assert destination == {"filesystem": {"baseDirectory": SERVING_DIR}}
  tasks = spec["root"]["dag"]["tasks"]
  assert tasks["CsvExampleGen"]["inputs"]["parameters"]["input_base"] == {
      "componentInputParameter": "data_root"}
  assert tasks["Pusher"]["inputs"]["parameters"]["push_destination"] == {
      "componentInputParameter": "push_destination"}
  assert spec["defaultPipelineRoot"] == PIPELINE_ROOT
  assert job["runtimeConfig"]["gcsOutputDirectory"] == PIPELINE_ROOT
  assert set(job["runtimeConfig"]["parameterValues"]) == {"data_root", "push_destination"}
  schema = tasks["ImportSchemaGen"]["inputs"]["parameters"]["schema_file"]
  assert schema["runtimeValue"]["constant"] == "/pipeline/schemas/ames/schema.pbtxt"


def test_no_path_of_the_compiling_machine_leaks(compiled):
  assert REPO_ROOT not in compiled["text"]
  assert os.path.expanduser("~") + "/" not in compiled["text"]


def test_json_parses_as_pipeline_job_and_spec(compiled):
  job = json_format.Parse(compiled["text"], pipeline_spec_pb2.PipelineJob())
  spec = json_format.ParseDict(compiled["json"]["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
  assert spec.pipeline_info.name == "grouped-regression-ames"
  assert spec.schema_version == "2.1.0" and spec.sdk_version == "tfx-1.16.0"
  assert job.runtime_config.gcs_output_directory == PIPELINE_ROOT
  assert set(spec.deployment_spec.fields["executors"].struct_value.fields) == {
      spec.components[c].executor_label for c in spec.components}


def test_kfp_sdk_loads_the_yaml_package(compiled):
  component = kfp.components.load_component_from_file(compiled["yaml"])
  assert component.name == "grouped-regression-ames"
  assert set(component.component_spec.inputs) == {"data_root", "push_destination"}
  assert component.component_spec.inputs["data_root"].default == "/pipeline/data/ames"
  assert set(component.pipeline_spec.root.dag.tasks) == set(
      _spec(compiled)["root"]["dag"]["tasks"])


def test_defaults_leave_destination_to_the_run():
  """Without a configured serving dir, push_destination is required at submit and the
  pipeline root is the backend's default: nothing local is baked in."""
  cfg = load_config("configs/ames.yaml")
  defaults = kubeflow_runner.parameter_defaults(cfg)
  assert defaults == {"data_root": "/pipeline/" + cfg.dataset.csv_dir}
  args = kubeflow_runner.kubeflow_pipeline_args(cfg, defaults, pipeline_root="")
  assert args["pipeline_name"] == "grouped-regression-ames"
  assert "metadata_connection_config" not in args   # KFP's own MLMD, no local SQLite
  assert args["serving_model_dir"].name == "push_destination"
  assert args["serving_model_dir"].default is None
  assert args["data_root"].default == defaults["data_root"]


def test_container_path_maps_only_repo_relative_paths():
  assert kubeflow_runner.container_path("data/ames") == "/pipeline/data/ames"
  assert kubeflow_runner.container_path("gs://b/data") == "gs://b/data"
  assert kubeflow_runner.container_path("/mnt/data") == "/mnt/data"


def test_grouping_waits_for_example_validation(compiled):
  """The anomaly stop on Kubeflow: Grouping runs after ExampleValidator and reads its
  anomalies, and every later step (Transform, Trainer, Evaluator, Pusher) depends on Grouping
  directly or through another step, so nothing trains or pushes on a bad data drop."""
  tasks = _spec(compiled)["root"]["dag"]["tasks"]
  grouping = tasks["Grouping"]
  assert "ExampleValidator" in grouping["dependentTasks"]
  producers = {a["taskOutputArtifact"]["producerTask"]
               for a in grouping["inputs"]["artifacts"].values() if "taskOutputArtifact" in a}
  assert "ExampleValidator" in producers, grouping["inputs"]["artifacts"]

  def upstream(task, seen=()):
    deps = set(tasks[task].get("dependentTasks", []))
    for d in deps - set(seen):
      deps |= upstream(d, seen + (task,))
    return deps

  for task in ("GroupedTransform", "GroupedTrainer", "Evaluator", "Pusher"):
    assert "Grouping" in upstream(task), task
