"""The real Grouping component in a tiny pipeline (CsvExampleGen -> Grouping, LocalDagRunner,
tmp dir): its one output, the artifact's contents and the per-split counts."""
import glob
import os

import numpy as np
import pandas as pd
import pytest
from tfx import v1 as tfx

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
  assert set(grouping.outputs) == {"grouping"}                # fits; writes no examples
  pipeline = tfx.dsl.Pipeline(
      pipeline_name="grouping_test", pipeline_root=os.path.join(root, "pipeline"),
      components=[example_gen, grouping],
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          os.path.join(root, "metadata.sqlite")))
  tfx.orchestration.LocalDagRunner().run(pipeline)
  art = lambda name: glob.glob(os.path.join(root, "pipeline", "*", name, "*"))[0]  # noqa: E731
  return {"examples": art("examples"), "grouping": art("grouping")}


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
def test_counts_per_split_are_the_components_assignment_of_the_examples(run):
  g = store.load(run["grouping"])
  counts = store.load_summary(run["grouping"])["counts"]
  assert sorted(counts) == ["eval", "train"]
  for split in ("train", "eval"):
    original = h.read_split(run["examples"], split)
    ids = fitting.assign(g, {"lon": _raw(original, "lon"), "lat": _raw(original, "lat")})
    assert np.bincount(ids, minlength=g.num_groups).tolist() == counts[split]
  assert not glob.glob(os.path.join(os.path.dirname(os.path.dirname(run["grouping"])),
                                    "annotated_examples"))
