"""Fixtures for the orchestrator tests: the expected graph, and an isolated Airflow home."""
from __future__ import annotations

import os
import sys

import pytest

# The pipeline's nodes as every orchestrator must show them (task ids = TFX node ids).
COMPONENTS = ("CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
              "Grouping", "GroupedTransform", "GroupedTrainer", "Evaluator", "Pusher")
RESOLVER = "latest_blessed_model_resolver"
# Data dependencies that define the design (the grouping gate sits between validation and
# training); the full edge set is compared against the TFX pipeline itself.
KEY_EDGES = (("ExampleValidator", "Grouping"), ("Grouping", "GroupedTransform"),
             ("Grouping", "GroupedTrainer"), ("Grouping", "Evaluator"),
             ("GroupedTransform", "GroupedTrainer"), ("GroupedTrainer", "Evaluator"),
             (RESOLVER, "Evaluator"), ("Evaluator", "Pusher"))
# Components whose executors build Beam pipelines, so beam_pipeline_args must reach them.
# (ExampleValidator is a plain Python executor in TFX 1.16.)
BEAM_COMPONENTS = ("CsvExampleGen", "StatisticsGen", "Grouping", "GroupedTransform", "Evaluator")


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory):
  """AIRFLOW_HOME and friends for in-process Airflow imports (Airflow reads its home once, at
  first import, so this is per session and must run before anything imports airflow)."""
  assert "airflow" not in sys.modules, "airflow was imported before its home was isolated"
  home = str(tmp_path_factory.mktemp("airflow_home"))
  env = {"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
         "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
         "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:///" + os.path.join(home, "airflow.db")}
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  yield home
  for k, v in saved.items():
    if v is None:
      os.environ.pop(k, None)
    else:
      os.environ[k] = v
