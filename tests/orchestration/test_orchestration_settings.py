"""Orchestrator settings a platform team must get right: the KFP image and Airflow's MLMD.

A KFP package whose image no cluster can pull compiles today and fails at run time; an Airflow
install with several workers on SQLite MLMD corrupts or locks it. Both are refused or
configurable here, with messages that say what to set.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline import airflow_dag_run, kubeflow_runner
from pipeline.config import REPO_ROOT, load_config


@pytest.mark.parametrize("image", ["", "  ", "grouped-regression:latest", "grouped-regression",
                                   "team/grouped-regression:latest"])
def test_kfp_refuses_an_image_no_cluster_can_pull(image):
  with pytest.raises(kubeflow_runner.ImageError, match="kubeflow.image.*--image"):
    kubeflow_runner.check_image(image)


@pytest.mark.parametrize("image", ["europe-docker.pkg.dev/proj/repo/grouped-regression:1.2.3",
                                   "localhost:5000/grouped-regression:latest",
                                   "team/grouped-regression:2024-01-02",
                                   "grouped-regression@sha256:" + "a" * 64])
def test_kfp_accepts_pullable_images(image):
  assert kubeflow_runner.check_image(image) == image


def test_kfp_compile_without_an_image_fails_with_a_clear_message(tmp_path):
  """The CLI `make kfp-compile` runs: exit 2 and the hint, before anything is compiled."""
  out = subprocess.run([sys.executable, "-m", "pipeline.kubeflow_runner", "--config",
                        "configs/ames.yaml", "--output-dir", str(tmp_path)],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
  assert out.returncode == 2, out.stderr[-2000:]
  assert "no container image given" in out.stderr and "--image" in out.stderr
  assert not list(tmp_path.iterdir())
  cfg = load_config("configs/ames.yaml", overrides={"kubeflow.image": "grouped-regression:latest"})
  with pytest.raises(kubeflow_runner.ImageError, match="names no registry"):
    kubeflow_runner.compile_pipeline(cfg, str(tmp_path))


def _dag_module(airflow_home, cfg, tmp_path):
  os.environ[airflow_dag_run.CONFIG_ENV] = airflow_dag_run.write_config(
      cfg, str(tmp_path / "config.yaml"))
  from pipeline import airflow_dag  # builds the DAG for that config at import
  return airflow_dag


def test_airflow_mlmd_is_sqlite_by_default_and_mysql_from_config(airflow_home, tmp_path):
  cfg = load_config("configs/ames.yaml", overrides={"outputs.root": str(tmp_path / "out")})
  airflow_dag = _dag_module(airflow_home, cfg, tmp_path)
  sqlite = airflow_dag.metadata_connection(cfg)
  assert sqlite.sqlite.filename_uri == cfg.metadata_path
  mysql_cfg = load_config("configs/ames.yaml", overrides={
      "outputs.root": str(tmp_path / "out"), "airflow.mlmd_mysql_host": "mlmd.db.internal",
      "airflow.mlmd_mysql_port": 3307, "airflow.mlmd_mysql_database": "tfx",
      "airflow.mlmd_mysql_user": "tfx", "airflow.mlmd_mysql_password_env": "MY_MLMD_PW"})
  conn = airflow_dag.metadata_connection(mysql_cfg, environ={"MY_MLMD_PW": "s3cret"})
  assert (conn.mysql.host, conn.mysql.port, conn.mysql.database, conn.mysql.user,
          conn.mysql.password) == ("mlmd.db.internal", 3307, "tfx", "tfx", "s3cret")
  with pytest.raises(ValueError, match="MY_MLMD_PW"):
    airflow_dag.metadata_connection(mysql_cfg, environ={})
