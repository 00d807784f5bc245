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


def metadata_connection(cfg: PipelineConfig, environ=os.environ):
  """MLMD connection from the config's `airflow.mlmd_*` fields.

  SQLite (below outputs.root, like the local runner) takes one writer: fine for a
  SequentialExecutor or LocalExecutor on one machine. With several workers (Celery,
  Kubernetes executors) set airflow.mlmd_mysql_host: every task then records into one MySQL
  database; the password is read from the environment variable the config names.
  """
  a = cfg.airflow
  if not a.mlmd_mysql_host:
    os.makedirs(cfg.output_root, exist_ok=True)  # MLMD's SQLite file lives here
    return tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
  password = environ.get(a.mlmd_mysql_password_env, "")
  if not password:
    raise ValueError(f"airflow.mlmd_mysql_host is set but the environment variable "
                     f"{a.mlmd_mysql_password_env} (airflow.mlmd_mysql_password_env) holding "
                     "the MySQL password is empty or unset on this worker")
  return tfx.orchestration.metadata.mysql_metadata_connection_config(
      host=a.mlmd_mysql_host, port=a.mlmd_mysql_port, database=a.mlmd_mysql_database,
      username=a.mlmd_mysql_user, password=password)


def build_dag(config_path: str):
  """The DAG for one config; MLMD as the config's airflow section says (metadata_connection)."""
  cfg = load_config(config_path)
  connection = metadata_connection(cfg)
  runner = airflow_dag_runner.AirflowDagRunner(
      airflow_dag_runner.AirflowPipelineConfig(airflow_dag_config=dag_config(cfg)))
  return runner.run(create_pipeline(**pipeline_args(cfg), metadata_connection_config=connection))


DAG = build_dag(Variable.get(CONFIG_VARIABLE, default_var=DEFAULT_CONFIG))
