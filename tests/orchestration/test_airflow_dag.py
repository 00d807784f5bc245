"""Airflow: DagBag imports pipeline/airflow_dag.py cleanly, with the pipeline's tasks and edges.

The config comes in through AIRFLOW_VAR_GROUPED_REGRESSION_CONFIG, which is how tests (and
deployments without a metadata DB entry) point the DAG at a config.
"""
from __future__ import annotations

import os

import pytest
import yaml

from pipeline import airflow_dag_run
from pipeline.config import REPO_ROOT, load_config
from pipeline.from_config import pipeline_args
from pipeline.pipeline import create_pipeline
from tests.orchestration.conftest import BEAM_COMPONENTS, COMPONENTS, KEY_EDGES, RESOLVER

DAG_FILE = os.path.join(REPO_ROOT, "pipeline", "airflow_dag.py")
BEAM_ARGS = ["--direct_running_mode=multi_threading", "--direct_num_workers=2"]


@pytest.fixture(scope="module")
def dag_and_config(airflow_home, tmp_path_factory):
  tmp = tmp_path_factory.mktemp("airflow_dag")
  cfg = load_config("configs/ames.yaml", overrides={
      "outputs.root": str(tmp / "out"), "beam.args": BEAM_ARGS,
      "airflow.schedule": "@daily", "airflow.retries": 2})
  config_path = airflow_dag_run.write_config(cfg, str(tmp / "config.yaml"))
  os.environ[airflow_dag_run.CONFIG_ENV] = config_path
  try:
    from airflow.models import DagBag  # pylint: disable=g-import-not-at-top
    bag = DagBag(dag_folder=DAG_FILE, include_examples=False)
  finally:
    os.environ.pop(airflow_dag_run.CONFIG_ENV)
  return bag, cfg


def test_dag_file_imports_without_errors(dag_and_config):
  bag, cfg = dag_and_config
  assert bag.import_errors == {}
  assert bag.dag_ids == [airflow_dag_run.dag_id(cfg)] == ["grouped_regression_ames"]


def test_one_task_per_pipeline_node(dag_and_config):
  bag, cfg = dag_and_config
  dag = bag.dags[airflow_dag_run.dag_id(cfg)]
  assert set(dag.task_ids) == set(COMPONENTS) | {RESOLVER}


def test_dependencies_match_the_tfx_pipeline(dag_and_config):
  bag, cfg = dag_and_config
  dag = bag.dags[airflow_dag_run.dag_id(cfg)]
  edges = {(up, t.task_id) for t in dag.tasks for up in t.upstream_task_ids}
  assert set(KEY_EDGES) <= edges
  tfx_pipeline = create_pipeline(**pipeline_args(cfg))
  expected = {(up.id, node.id) for node in tfx_pipeline.components
              for up in node.upstream_nodes}
  assert edges == expected


def test_dag_settings_come_from_the_config(dag_and_config):
  bag, cfg = dag_and_config
  dag = bag.dags[airflow_dag_run.dag_id(cfg)]
  assert dag.schedule_interval == "@daily" and not dag.catchup
  assert {t.retries for t in dag.tasks} == {2}
  # MLMD goes where the config says: every task's launcher records into the SQLite file at
  # cfg.metadata_path, below outputs.root (test_airflow_e2e reads a run's executions back from
  # that file)
  assert cfg.metadata_path.startswith(cfg.output_root + os.sep)
  for task in dag.tasks:
    connection = task.python_callable.keywords["metadata_connection_config"]
    assert connection.sqlite.filename_uri == cfg.metadata_path, task.task_id


def test_beam_args_reach_every_beam_task(dag_and_config):
  bag, cfg = dag_and_config
  dag = bag.dags[airflow_dag_run.dag_id(cfg)]
  for task_id in BEAM_COMPONENTS:
    launch = dag.get_task(task_id).python_callable   # functools.partial of the TFX launcher
    assert launch.keywords["beam_pipeline_args"] == BEAM_ARGS, task_id


def test_effective_config_round_trips(tmp_path):
  """write_config's YAML (what the DAG file loads) is the same config."""
  cfg = load_config("configs/ames.yaml", overrides={"beam.args": BEAM_ARGS})
  path = airflow_dag_run.write_config(cfg, str(tmp_path / "c.yaml"))
  again = load_config(path)
  assert again.to_dict() == cfg.to_dict()
  with open(path) as f:
    assert yaml.safe_load(f)["beam"]["args"] == BEAM_ARGS
