"""Constants and helpers shared by the serving tests and their fixtures."""
from __future__ import annotations

import os
import shutil

MODEL = "ames"
MAX_REQUEST_BYTES = 1_000_000
SERVER_ARGS = ["--poll_seconds", "0.3", "--max_request_bytes", str(MAX_REQUEST_BYTES)]


def make_base(tmp_path_factory, name: str, src: str) -> str:
  """A fresh model base path holding `src` as version 1."""
  base = str(tmp_path_factory.mktemp(name))
  shutil.copytree(src, os.path.join(base, "1"))
  return base
