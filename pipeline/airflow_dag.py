"""Airflow DAG of the pipeline, built by TFX's AirflowDagRunner: one task per component.

Put this file in Airflow's dags_folder (a symlink is fine: the repo is found from the file's
real path) or point `airflow dags test -S` at it. The config path comes from the Airflow
Variable `grouped_regression_config` (or the env var AIRFLOW_VAR_GROUPED_REGRESSION_CONFIG,
which Airflow reads first, without a database query), default configs/ames.yaml; relative
paths are relative to the repo. The DAG id is the pipeline name, e.g. grouped_regression_ames.
"""
from __future__ import annotations

import datetime
import os
import sys

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before the first TensorFlow import

# pylint: disable=g-import-not-at-top,wrong-import-position
from airflow.models import Variable  # noqa: E402
from tfx import v1 as tfx  # noqa: E402
from tfx.orchestration.airflow import airflow_dag_runner  # noqa: E402

from pipeline.config import PipelineConfig, load_config  # noqa: E402
from pipeline.from_config import pipeline_args  # noqa: E402
from pipeline.pipeline import create_pipeline  # noqa: E402

CONFIG_VARIABLE = "grouped_regression_config"
DEFAULT_CONFIG = "configs/ames.yaml"


def dag_config(cfg: PipelineConfig) -> dict:
  """airflow.models.DAG arguments from the config's `airflow` section."""
  a = cfg.airflow
  return dict(
      schedule=a.schedule,
      start_date=datetime.datetime.fromisoformat(a.start_date),
      catchup=False,
      default_args={"retries": a.retries},
      tags=["tfx", "grouped-regression", cfg.name],
      description=f"grouped regression on {cfg.name} ({cfg.dataset.source})")


def build_dag(config_path: str):
  """The DAG for one config: MLMD in SQLite below outputs.root, like the local runner."""
  cfg = load_config(config_path)
  os.makedirs(cfg.output_root, exist_ok=True)  # MLMD's SQLite file lives here
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
  runner = airflow_dag_runner.AirflowDagRunner(
      airflow_dag_runner.AirflowPipelineConfig(airflow_dag_config=dag_config(cfg)))
  return runner.run(create_pipeline(**pipeline_args(cfg), metadata_connection_config=connection))


DAG = build_dag(Variable.get(CONFIG_VARIABLE, default_var=DEFAULT_CONFIG))
