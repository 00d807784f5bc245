"""components/code_version.py: the fingerprint follows the source a node runs, and only that."""
import sys

import pytest

from components import code_version
from components.grouping import component as grouping_component
from pipeline.pipeline import PREPROCESSING_FN, RUN_FN


@pytest.fixture()
def package(tmp_path, monkeypatch):
  """A throw-away first-party package `fp_pkg` on sys.path: entry -> helper (relative import)
  -> deep (absolute), plus an unrelated module nobody imports."""
  pkg = tmp_path / "fp_pkg"
  (pkg / "sub").mkdir(parents=True)
  files = {
      "__init__.py": "",
      "entry.py": "import os\nfrom . import helper\nfrom fp_pkg.sub import deep as _d\n",
      "helper.py": "import numpy as np\nfrom .sub.deep import VALUE\n",
      "sub/__init__.py": "",
      "sub/deep.py": "VALUE = 1\n",
      "unrelated.py": "X = 0\n",
  }
  for name, text in files.items():
    (pkg / name).write_text(text)
  monkeypatch.syspath_prepend(str(tmp_path))
  yield pkg
  for name in [m for m in sys.modules if m.startswith("fp_pkg")]:
    del sys.modules[name]


def test_sources_follow_first_party_imports_transitively(package):
  found = code_version.sources(["fp_pkg.entry"])
  assert set(found) == {"fp_pkg", "fp_pkg.entry", "fp_pkg.helper", "fp_pkg.sub",
                        "fp_pkg.sub.deep"}
  assert "fp_pkg.sub" in found and "fp_pkg.unrelated" not in found   # no os, no numpy either


def test_an_edit_two_imports_away_changes_the_fingerprint(package):
  before = code_version.fingerprint("fp_pkg.entry")
  assert code_version.fingerprint("fp_pkg.entry") == before          # stable
  (package / "unrelated.py").write_text("X = 1\n")
  assert code_version.fingerprint("fp_pkg.entry") == before          # not imported: no change
  (package / "sub" / "deep.py").write_text("VALUE = 2\n")
  assert code_version.fingerprint("fp_pkg.entry") != before


def test_a_missing_entry_module_is_an_error(package):
  with pytest.raises(ValueError, match=r"'fp_pkg.nope' is not a module"):
    code_version.fingerprint("fp_pkg.nope")


def test_each_node_covers_the_code_it_runs():
  trainer = code_version.sources([RUN_FN.rpartition(".")[0]])
  transform = code_version.sources([PREPROCESSING_FN.rpartition(".")[0]])
  grouping = code_version.sources([grouping_component.EXECUTOR_MODULE])
  # run_fn reaches the boosted variant and the grouping store; the transform graph the grouping
  # assignment; neither the pipeline package nor each other's entry points
  assert {"models.grouped_regression.boosted", "components.grouping.store"} <= set(trainer)
  assert "components.grouping.tf_assign" in transform
  assert "models.grouped_regression.trainer" not in transform
  assert "components.grouping.fit_train" in grouping
  assert not [m for m in {**trainer, **transform, **grouping} if m.startswith("pipeline")]


def test_create_pipeline_puts_each_fingerprint_in_its_node():
  from pipeline.config import load_config  # pylint: disable=g-import-not-at-top
  from pipeline.from_config import pipeline_args  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  nodes = {c.id: c for c in create_pipeline(**pipeline_args(load_config("configs/ames.yaml")))
           .components}
  got = {k: nodes[k].exec_properties[code_version.CODE_VERSION_KEY]
         for k in ("Grouping", "GroupedTransform", "GroupedTrainer", "Evaluator")}
  assert got["GroupedTrainer"] == code_version.of_function(RUN_FN)
  assert got["GroupedTransform"] == code_version.of_function(PREPROCESSING_FN)
  assert got["Grouping"] == code_version.fingerprint(grouping_component.EXECUTOR_MODULE)
  assert len(set(got.values())) == 4 and all(len(v) == 16 for v in got.values())
