"""The real Grouping component in a tiny pipeline (CsvExampleGen -> Grouping -> StatisticsGen on
the annotated examples, LocalDagRunner, tmp dir): artifact contents, the annotated examples,
and per-group statistics."""
import glob
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx import v1 as tfx
from tfx_bsl.public.proto import slicing_spec_pb2

import components.grouping as grouping_pkg
from components.grouping import fitting, store
from components.grouping.component import Grouping
from tests.grouping import helpers as h

GROUP = "group_id"
ROWS = 1200


def _csv(path: str) -> pd.DataFrame:
  cols, _ = h.blobs(ROWS, seed=11)
  df = pd.DataFrame(cols)
  df.loc[::40, "lon"] = np.nan                     # missing grouping values
  rng = np.random.default_rng(0)
  df["zone"] = rng.choice(["RL", "RM", "FV"], ROWS)
  df["ms_class"] = rng.choice([20, 60, 120], ROWS)
  df["y"] = rng.normal(12, 0.4, ROWS)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  df.to_csv(path, index=False)
  return df


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("grouping_pipeline"))
  _csv(os.path.join(root, "data", "blobs.csv"))
  example_gen = tfx.components.CsvExampleGen(input_base=os.path.join(root, "data"))
  grouping = Grouping(examples=example_gen.outputs["examples"], mode="kmeans",
                      features=["lon", "lat"], k_values=range(2, 7), group_feature=GROUP,
                      seed=5, min_group_share=0.05, sample_size=100_000)
  slicing = slicing_spec_pb2.SlicingConfig(
      slicing_specs=[slicing_spec_pb2.SlicingSpec(feature_keys=[GROUP])])
  stats = tfx.components.StatisticsGen(examples=grouping.outputs["annotated_examples"],
                                       stats_options=tfdv.StatsOptions(slicing_config=slicing))
  pipeline = tfx.dsl.Pipeline(
      pipeline_name="grouping_test", pipeline_root=os.path.join(root, "pipeline"),
      components=[example_gen, grouping, stats],
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          os.path.join(root, "metadata.sqlite")))
  tfx.orchestration.LocalDagRunner().run(pipeline)
  art = lambda name: glob.glob(os.path.join(root, "pipeline", "*", name, "*"))[0]  # noqa: E731
  return {"examples": art("examples"), "grouping": art("grouping"),
          "annotated": art("annotated_examples"), "statistics": art("statistics")}


def _raw(examples, name):
  out = []
  for ex in examples:
    f = ex.features.feature[name]
    out.append(f.float_list.value[0] if f.float_list.value else np.nan)
  return np.array(out)


@pytest.mark.slow
def test_artifact_holds_fit_curve_counts_and_a_report(run):
  a = grouping_pkg.load(run["grouping"])                     # the one-call notebook entry
  g, s = a.grouping, a.summary
  assert g.num_groups == 4 and s["num_groups"] == 4          # the four blobs, chosen automatically
  assert [c.k for c in g.selection] == [2, 3, 4, 5, 6] and g.silhouette > 0.7
  assert s["train_rows"] + s["rows"]["eval"] == ROWS and s["fit_rows"] == s["train_rows"]
  assert sum(s["missing"][split]["lon"] for split in ("train", "eval")) == ROWS // 40
  assert s["imputed_with"]["lon"] == pytest.approx(g.impute[0])
  for name in ("grouping.json", "summary.json", "centroids.npy", "mean.npy", "scale.npy",
               "impute.npy", "report.png", "report.html"):
    assert os.path.getsize(os.path.join(run["grouping"], name)) > 0, name
  np.testing.assert_array_equal(np.load(os.path.join(run["grouping"], "centroids.npy")),
                                g.centroids)
  with open(a.report_png, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  html = a._repr_html_()
  assert "data:image/png;base64," in html and "Choosing k" in html and "imputed" in html


@pytest.mark.slow
def test_annotated_examples_are_the_inputs_plus_the_components_group_id(run):
  g = store.load(run["grouping"])
  counts = store.load_summary(run["grouping"])["counts"]
  for split in ("train", "eval"):
    original = h.read_split(run["examples"], split)
    annotated = h.read_split(run["annotated"], split)
    assert len(annotated) == len(original) > 0
    ids = np.array([ex.features.feature[GROUP].int64_list.value[0] for ex in annotated])
    for before, after in zip(original, annotated):
      del after.features.feature[GROUP]
      assert before == after                               # nothing else changed
    expected = fitting.assign(g, {"lon": _raw(original, "lon"), "lat": _raw(original, "lat")})
    np.testing.assert_array_equal(ids, expected)
    assert np.bincount(ids, minlength=g.num_groups).tolist() == counts[split]


@pytest.mark.slow
def test_statistics_gen_computes_per_group_statistics(run):
  counts = store.load_summary(run["grouping"])["counts"]["train"]
  stats = tfdv.load_stats_binary(os.path.join(run["statistics"], "Split-train",
                                              "FeatureStats.pb"))
  per_group = {d.name: d.num_examples for d in stats.datasets}
  for gid, n in enumerate(counts):
    assert per_group[f"{GROUP}_{gid}"] == n
  assert tf.io.gfile.exists(os.path.join(run["statistics"], "Split-eval", "FeatureStats.pb"))
