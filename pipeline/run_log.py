"""Where a local run's output goes: the full log (absl, TFX, Beam, TF, Keras, warnings, and
anything written to fd 1/2 by C++ code) into one file, the console kept for the progress lines.

The file descriptors themselves are redirected, not just Python's logging, because TF and Beam
also write from C++ and through print(); `verbose` keeps everything on the terminal as well.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator, TextIO

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def captured(log_path: str, verbose: bool = False) -> Iterator[TextIO]:
  """Yields the console stream; inside, logs go to `log_path` (and the terminal if verbose)."""
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  sys.stdout.flush()
  sys.stderr.flush()
  console = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
  log_file = open(log_path, "w", buffering=1, encoding="utf-8")
  saved = [os.dup(1), os.dup(2)]
  root = logging.getLogger()
  old_handlers, old_level = list(root.handlers), root.level
  file_handler = logging.StreamHandler(log_file)
  file_handler.setFormatter(logging.Formatter(_FORMAT))
  root.handlers = [file_handler]
  if verbose:
    term = logging.StreamHandler(os.fdopen(os.dup(2), "w", buffering=1))
    term.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(term)
  else:
    os.dup2(log_file.fileno(), 1)
    os.dup2(log_file.fileno(), 2)
  root.setLevel(logging.INFO)
  # absl's logger level follows its --verbosity flag, which a flag parse inside a component
  # (Beam) resets to WARNING; TFX's 'Component X is finished.' records are INFO: keep it.
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.INFO)
  absl_logger = logging.getLogger("absl")
  absl_logger.setLevel(logging.INFO)
  absl_logger.setLevel = lambda level: None  # sticky for this run
  logging.captureWarnings(True)
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.keras.utils.disable_interactive_logging()  # Keras epoch lines become log records
    yield console
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    for fd in saved:
      os.close(fd)
    del absl_logger.setLevel
    root.handlers, root.level = old_handlers, old_level
    log_file.close()
