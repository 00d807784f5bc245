"""Runs one pipeline in a child process and measures it: wall time, and per component (from
MLMD) wall time and the peak RSS of the child's whole process tree while that component ran.

LocalDagRunner runs one component at a time, so an RSS sample taken at time t belongs to the
execution whose [create, last update] interval holds t. Beam workers (multi_processing mode)
are children of the runner, hence the process-tree sum.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

import psutil

SAMPLE_SECONDS = 0.2


@dataclasses.dataclass
class Measurement:
  wall_s: float
  peak_rss_mb: float
  components: Dict[str, Dict[str, float]]   # component -> {seconds, peak_rss_mb}
  returncode: int
  stderr_tail: str = ""


def _tree_rss(proc: psutil.Process) -> int:
  total = 0
  try:
    procs = [proc] + proc.children(recursive=True)
  except psutil.Error:
    return 0
  for p in procs:
    try:
      total += p.memory_info().rss
    except psutil.Error:
      pass
  return total


def _sample(proc: psutil.Process, out: List[Tuple[float, int]], stop: threading.Event) -> None:
  while not stop.is_set():
    out.append((time.time(), _tree_rss(proc)))
    stop.wait(SAMPLE_SECONDS)


def executions(metadata_path: str) -> List[Tuple[str, float, float]]:
  """(component id, start, end) in epoch seconds for every execution in a SQLite MLMD store."""
  from ml_metadata.metadata_store import metadata_store  # pylint: disable=g-import-not-at-top
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  store = metadata_store.MetadataStore(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))
  types = {t.id: t.name.split(".")[-1] for t in store.get_execution_types()}
  out = []
  for e in sorted(store.get_executions(), key=lambda e: e.id):
    out.append((types.get(e.type_id, "?"), e.create_time_since_epoch / 1000.0, e.last_update_time_since_epoch / 1000.0))
  return out


def per_component(samples: List[Tuple[float, int]], spans: List[Tuple[str, float, float]]
                  ) -> Dict[str, Dict[str, float]]:
  """Component -> seconds and peak RSS (MB) of the samples inside its span."""
  out: Dict[str, Dict[str, float]] = {}
  for name, start, end in spans:
    rss = [r for t, r in samples if start <= t <= end]
    if not rss and samples:   # shorter than one sampling interval: the nearest sample
      mid = (start + end) / 2
      rss = [min(samples, key=lambda s: abs(s[0] - mid))[1]]
    entry = out.setdefault(name, {"seconds": 0.0, "peak_rss_mb": 0.0})
    entry["seconds"] += end - start
    entry["peak_rss_mb"] = max(entry["peak_rss_mb"], max(rss, default=0) / 2**20)
  return out


def run_child(args: List[str], metadata_path: str, env: Optional[Dict[str, str]] = None,
              extra_spans: Optional[str] = None) -> Measurement:
  """Runs `python -m <args...>` and measures it. `extra_spans`: a file where the child appends
  `name start end` lines for steps outside MLMD (the report)."""
  start = time.time()
  proc = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=env or os.environ.copy())
  samples: List[Tuple[float, int]] = []
  stop = threading.Event()
  sampler = threading.Thread(target=_sample, args=(psutil.Process(proc.pid), samples, stop),
                             daemon=True)
  sampler.start()
  _, stderr = proc.communicate()
  stop.set()
  sampler.join()
  wall = time.time() - start
  spans = executions(metadata_path) if os.path.exists(metadata_path) else []
  if extra_spans and os.path.exists(extra_spans):
    with open(extra_spans) as f:
      for line in f:
        name, s, e = line.split()
        spans.append((name, float(s), float(e)))
  return Measurement(wall_s=wall, peak_rss_mb=max((r for _, r in samples), default=0) / 2**20,
                     components=per_component(samples, spans), returncode=proc.returncode,
                     stderr_tail=(stderr or "")[-3000:])
