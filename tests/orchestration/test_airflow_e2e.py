"""Airflow end to end: `airflow dags test` runs every task of the DAG on a small Ames sample.

Real Airflow 2.10 (SQLite home in a temp dir, `airflow db migrate` first), real TFX components
through AirflowDagRunner's launcher; the pushed model is then read back from MLMD and disk.
"""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.grouping import store as grouping_store
from pipeline import airflow_dag_run, run_summary
from tests import pipeline_fixtures as fx
from tests.orchestration.conftest import COMPONENTS, RESOLVER


@pytest.fixture(scope="module")
def dag_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("airflow_e2e")
  cfg = fx.small_config(str(tmp), rows=800)   # in_memory Beam, 4 epochs
  result = airflow_dag_run.run_dag_test(cfg, str(tmp / "airflow_home"), timeout_s=1500)
  return cfg, result


@pytest.mark.slow
def test_every_task_succeeds(dag_run):
  _, result = dag_run
  assert result.states == {t: "success" for t in (*COMPONENTS, RESOLVER)}, (
      f"see {result.log_file}:\n{airflow_dag_run.tail(result.log_file)}")


@pytest.mark.slow
def test_each_task_ran_its_component_and_recorded_it_in_mlmd(dag_run):
  """AirflowDagRunner's launcher records one component_run context per task of the run."""
  cfg, _ = dag_run
  store = metadata_store.MetadataStore(fx.connection(cfg))
  complete = {}
  for ctx in store.get_contexts_by_type("component_run"):
    component = ctx.name.rsplit(".", 1)[-1]
    complete[component] = [e.last_known_state for e in store.get_executions_by_context(ctx.id)]
  for component in COMPONENTS:
    assert complete.get(component) == [metadata_store_pb2.Execution.COMPLETE], (
        component, complete.get(component))


@pytest.mark.slow
def test_pushed_model_exists_and_serves(dag_run):
  cfg, _ = dag_run
  summary = run_summary.summarize(fx.connection(cfg))
  assert summary.blessed is True and summary.pushed, summary
  assert summary.pushed_path.startswith(cfg.serving_base_dir)
  assert os.path.exists(os.path.join(summary.pushed_path, "saved_model.pb"))
  # the pushed model answers on real rows: the run's evaluation examples, label removed
  model = tf.saved_model.load(summary.pushed_path)
  records, labels = _eval_examples(cfg)
  out = model.signatures["serving_default"](examples=tf.constant(records))
  pred = out["prediction"].numpy().reshape(-1)
  groups = out["group_id"].numpy().reshape(-1)
  assert pred.shape == (len(records),) and np.isfinite(pred).all()
  num_groups = grouping_store.load_summary(summary.grouping_uri)["num_groups"]
  assert set(groups.tolist()) <= set(range(num_groups)) and len(set(groups.tolist())) > 1
  # better than predicting the mean label for every row (a model that learned something)
  rmse = np.sqrt(np.mean((pred - labels) ** 2))
  assert rmse < 0.8 * np.std(labels), (rmse, np.std(labels))


def _eval_examples(cfg):
  """Serialized eval-split tf.Examples of the run's ExampleGen output, without the label."""
  (split_dir,) = glob.glob(os.path.join(cfg.pipeline_root, "CsvExampleGen", "examples", "*",
                                        "Split-eval"))
  files = sorted(glob.glob(os.path.join(split_dir, "*")))
  records, labels = [], []
  for raw in tf.data.TFRecordDataset(files, compression_type="GZIP"):
    ex = tf.train.Example.FromString(raw.numpy())
    labels.append(ex.features.feature[cfg.dataset.label].float_list.value[0])
    del ex.features.feature[cfg.dataset.label]
    records.append(ex.SerializeToString())
  return records, np.array(labels)
