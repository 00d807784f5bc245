"""`make airflow-dag-test`: runs pipeline/airflow_dag.py end to end with `airflow dags test`.

Proves the DAG really runs on Airflow, not just that it parses: a throw-away Airflow home
(SQLite, examples off), `airflow db migrate`, `airflow dags test <dag_id>` (every task, in
order, in one process), then each task's final state from Airflow's database and the pushed
model from MLMD. Exits 1 unless every task succeeded.

  python -m pipeline.airflow_dag_run --config configs/ames.yaml [--set dataset.sample_rows=800]

Outputs (Airflow home, pipeline root, MLMD, pushed model) go below
<outputs.root>/airflow_dag_run/, wiped at the start of each run, unless --airflow-home is given;
with a `dataset.*` override the data is materialised there too, leaving data/<name>/ alone.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import yaml

from pipeline.config import REPO_ROOT, PipelineConfig, load_config

log = logging.getLogger("airflow_dag_run")

DAG_FILE = os.path.join(REPO_ROOT, "pipeline", "airflow_dag.py")
CONFIG_ENV = "AIRFLOW_VAR_GROUPED_REGRESSION_CONFIG"   # Variable grouped_regression_config
# Parsing the DAG file imports TensorFlow/TFX: far over Airflow's 30 s default on a busy box.
DAGBAG_IMPORT_TIMEOUT_S = 600


class AirflowDagTestError(RuntimeError):
  """An `airflow` command failed or a task did not succeed; the message says which."""


@dataclasses.dataclass
class DagTestResult:
  dag_id: str
  states: Dict[str, Optional[str]]   # task_id -> final state
  seconds: float
  log_file: str

  @property
  def succeeded(self) -> bool:
    return bool(self.states) and all(s == "success" for s in self.states.values())


def dag_id(cfg: PipelineConfig) -> str:
  """AirflowDagRunner names the DAG after the pipeline (pipeline/from_config.py)."""
  from pipeline.from_config import pipeline_args  # pylint: disable=g-import-not-at-top
  return pipeline_args(cfg)["pipeline_name"]


def airflow_env(airflow_home: str, config_path: str) -> Dict[str, str]:
  """Environment for `python -m airflow ...`: isolated home, SQLite, no examples, our config."""
  env = dict(os.environ)
  env.update({
      "AIRFLOW_HOME": airflow_home,
      "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
      "AIRFLOW__CORE__DAGS_FOLDER": DAG_FILE,   # a file is a valid dags_folder
      "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": str(DAGBAG_IMPORT_TIMEOUT_S),
      "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
          "sqlite:///" + os.path.join(os.path.abspath(airflow_home), "airflow.db"),
      "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
      CONFIG_ENV: config_path,
      "TF_USE_LEGACY_KERAS": "1",
      "PYTHONPATH": os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p),
  })
  return env


def run_airflow(args: List[str], env: Dict[str, str], log_file: str, timeout_s: float) -> None:
  """Runs one airflow CLI command, output appended to log_file; raises with its tail on failure."""
  start = time.time()
  with open(log_file, "a") as out:
    out.write(f"\n$ airflow {' '.join(args)}\n")
    out.flush()
    rc = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, stdout=out,
                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO_ROOT,
                        timeout=timeout_s, check=False).returncode
  log.info("airflow %s: exit %d after %.0f s", args[:2], rc, time.time() - start)
  if rc != 0:
    raise AirflowDagTestError(f"`airflow {' '.join(args)}` exited {rc}; last lines of "
                              f"{log_file}:\n{tail(log_file)}")


def tail(path: str, lines: int = 40) -> str:
  with open(path, errors="replace") as f:
    return "".join(f.readlines()[-lines:])


def task_states(airflow_home: str, dag: str) -> Dict[str, Optional[str]]:
  """Final state of every task instance of the DAG, read from Airflow's SQLite database."""
  db = sqlite3.connect(os.path.join(airflow_home, "airflow.db"))
  try:
    rows = db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ?", (dag,))
    return dict(rows.fetchall())
  finally:
    db.close()


def write_config(cfg: PipelineConfig, path: str) -> str:
  """The effective config (overrides applied) as YAML, for the DAG file to load."""
  with open(path, "w") as f:
    yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
  return path


def run_dag_test(cfg: PipelineConfig, airflow_home: str,
                 timeout_s: float = 3600) -> DagTestResult:
  """`airflow db migrate` + `airflow dags test` for cfg in airflow_home; returns task states."""
  os.makedirs(airflow_home, exist_ok=True)
  config_path = write_config(cfg, os.path.join(airflow_home, "pipeline_config.yaml"))
  env = airflow_env(airflow_home, config_path)
  log_file = os.path.join(airflow_home, "airflow_dag_run.log")
  start = time.time()
  log.info("airflow_dag_run: migrating the Airflow database in %s", airflow_home)
  run_airflow(["db", "migrate"], env, log_file, timeout_s=600)
  dag = dag_id(cfg)
  log.info("airflow_dag_run: running every task of %s (log: %s)", dag, log_file)
  run_airflow(["dags", "test", "-S", DAG_FILE, dag], env, log_file, timeout_s=timeout_s)
  return DagTestResult(dag_id=dag, states=task_states(airflow_home, dag),
                       seconds=time.time() - start, log_file=log_file)


def main() -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--config", required=True)
  p.add_argument("--set", nargs="*", metavar="KEY=VALUE",
                 help="override config fields, e.g. dataset.sample_rows=800 model.epochs=4")
  p.add_argument("--airflow-home", help="kept as is (default: a fresh dir below outputs.root)")
  args = p.parse_args()
  overrides: Dict[str, Any] = {k: yaml.safe_load(v) for k, v in
                               (s.split("=", 1) for s in args.set or [])}
  base = load_config(args.config, overrides=overrides)
  airflow_home = args.airflow_home or os.path.join(base.output_root, "airflow_dag_run")
  if not args.airflow_home and os.path.isdir(airflow_home):
    shutil.rmtree(airflow_home)
  home = os.path.abspath(airflow_home)
  own = {"outputs.root": os.path.join(home, "out")}
  if any(k.startswith("dataset.") for k in overrides):  # e.g. a sample: don't touch data/<name>
    own["dataset.csv_dir"] = os.path.join(home, "data")
  cfg = load_config(args.config, overrides={**overrides, **own})

  from data import prepare  # pylint: disable=g-import-not-at-top
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  prepare.prepare(cfg)
  try:
    result = run_dag_test(cfg, airflow_home)
  except AirflowDagTestError as e:
    sys.exit(f"airflow_dag_run: FAILED: {e}")
  print(f"\n== Airflow DAG {result.dag_id}: {len(result.states)} tasks in "
        f"{result.seconds:.0f} s ==")
  for task, state in sorted(result.states.items()):
    print(f"  {task:32s} {state}")
  if not result.succeeded:
    sys.exit(f"airflow_dag_run: FAILED: not every task succeeded; see {result.log_file}")
  summary = run_summary.summarize(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path))
  for line in run_summary.describe(summary, cwd=os.getcwd()):
    print(line)


if __name__ == "__main__":
  main()
