"""The console of a local run: one line per component (started, finished, seconds, the result a
user cares about); everything else goes to the run log.

TFX's LocalDagRunner logs 'Component X is running.' / '... is finished.' through absl; a logging
handler picks those records up and, when a node finishes, reads what it produced from MLMD
(artifact types, not node ids, decide what is shown, so renamed nodes still report). Keras'
per-epoch lines arrive as absl records too (interactive logging off) and become one updating
line on a terminal.
"""
from __future__ import annotations

import logging
import os
import re
import time
from typing import Callable, Dict, List, Optional, TextIO

from ml_metadata.metadata_store import metadata_store
from tfx.types import artifact_utils

_RUNNING = "Component %s is running."
_FINISHED = "Component %s is finished."
_CACHED = "A cached execution %d is used."
_EPOCH = re.compile(r"^Epoch (\d+)/(\d+)$")
_VAL_RMSE = re.compile(r"val_rmse: ([0-9.eE+-]+)")


def _n(x) -> str:
  return f"{int(x):,}"


class Progress(logging.Handler):
  """Prints component start/finish lines to `out`; `describe(type_name, artifact)` results."""

  def __init__(self, out: TextIO, connection_config, describers: Dict[str, Callable]):
    super().__init__(level=logging.INFO)
    self.out, self.connection, self.describers = out, connection_config, describers
    self.tty = out.isatty()
    self.started: Dict[str, float] = {}
    self.cached = False
    self.epochs: List[Optional[float]] = []   # val RMSE per epoch of the running Trainer
    self.max_epochs = 0
    self.refit: Optional[tuple] = None
    self.components: List[str] = []
    self.out_types: set = set()
    self.trainer_variant: Optional[str] = None
    # networks this Trainer run trained: name -> (epochs, the head refit's log args or None)
    self.candidates: Dict[str, tuple] = {}

  def line(self, text: str, final: bool = True) -> None:
    if self.tty:
      self.out.write("\r\033[K" + text + ("\n" if final else ""))
    elif final:
      self.out.write(text + "\n")
    self.out.flush()

  def emit(self, record: logging.LogRecord) -> None:
    try:
      self._handle(record)
    except Exception as e:  # pylint: disable=broad-except  # the console must not stop a run
      logging.getLogger(__name__).warning("progress line failed: %s", e)

  def _handle(self, record: logging.LogRecord) -> None:
    if record.msg == _RUNNING:
      node = str(record.args[0])
      self.started[node], self.cached = time.time(), False
      self.epochs, self.max_epochs, self.refit = [], 0, None
      self.trainer_variant, self.candidates = None, {}
      self.components.append(node)
      self.line(f"{time.strftime('%H:%M:%S')}  {node:<30} started", final=not self.tty)
    elif record.msg == _CACHED:
      self.cached = True
    elif record.msg == _FINISHED:
      node = str(record.args[0])
      secs = time.time() - self.started.get(node, time.time())
      result = "; ".join(self._results()) or "done"
      how = "cached" if self.cached else f"{secs:6.1f} s"
      self.line(f"{time.strftime('%H:%M:%S')}  {node:<30} finished {how:>8}  {result}")
    elif isinstance(record.msg, str) and record.msg.startswith("training %s (%s): %d groups"):
      self.trainer_variant = f"{record.args[0]}/{record.args[1]}"
      self.epochs, self.max_epochs, self.refit = [], 0, None     # a new network's epochs
    elif isinstance(record.msg, str) and record.msg.startswith("candidate %s: eval RMSE"):
      if self.trainer_variant == str(record.args[0]):   # a network (epoch lines) just finished
        self.candidates[self.trainer_variant] = (len(self.epochs), self.refit)
    elif isinstance(record.msg, str) and record.msg.startswith("group heads refit"):
      self.refit = record.args   # (best, lambda, rmse before, rmse after, rows, rows)
    elif isinstance(record.msg, str):
      m = _EPOCH.match(record.msg)
      if m:
        self.max_epochs = int(m.group(2))
        return
      m = _VAL_RMSE.search(record.msg)
      if m:
        self.epochs.append(float(m.group(1)))
        what = f"training {self.trainer_variant or ''}".strip()
        self.line(f"{'':10}{what:<30} epoch {len(self.epochs)}/{self.max_epochs}  "
                  f"eval RMSE {self.epochs[-1]:.4f}", final=False)

  def _results(self, execution_id: Optional[int] = None) -> List[str]:
    """What an execution (default: the one that just finished) produced, one phrase per output
    artifact."""
    store = metadata_store.MetadataStore(self.connection)
    if execution_id is None:
      executions = store.get_executions()
      if not executions:
        return []
      execution_id = max(e.id for e in executions)
    events = store.get_events_by_execution_ids([execution_id])
    out_ids = [e.artifact_id for e in events if e.type in (e.OUTPUT, e.DECLARED_OUTPUT)]
    in_ids = [e.artifact_id for e in events if e.type in (e.INPUT, e.DECLARED_INPUT)]
    types = {t.id: t for t in store.get_artifact_types()}
    phrases = []
    self.out_types = set()
    arts = store.get_artifacts_by_id(out_ids) if out_ids else []
    if not arts and in_ids:  # a resolver: what it resolved
      arts = [a for a in store.get_artifacts_by_id(in_ids) if types[a.type_id].name == "Model"]
      return [f"baseline: {short_path(arts[0].uri)}" if arts else "baseline: none (first run)"]
    self.out_types = {types[a.type_id].name for a in arts}
    for a in sorted(arts, key=lambda a: a.id):
      describe = self.describers.get(types[a.type_id].name)
      if describe:
        text = describe(artifact_utils.deserialize_artifact(types[a.type_id], a), self)
        if text:
          phrases.append(text)
    return phrases


def short_path(path: str) -> str:
  """Relative to the working directory when below it, else absolute."""
  rel = os.path.relpath(path)
  return path if rel.startswith("..") else rel
