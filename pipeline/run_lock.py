"""One writer per outputs root: an exclusive lock held by the local runner for the whole run.

A second run on the same root exits at once (RunLockedError names the lock file and the pid
holding it) rather than waiting: two runs would both execute every component, both see no
blessed baseline and both push. `fcntl.flock` is released by the kernel when the process dies,
so a killed run never leaves a stale lock behind. Executions such a killed run left RUNNING in
MLMD are then reported and marked abandoned (mark_abandoned), which is sound only while the lock
is held: no live process can own them.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from typing import Iterator, List

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

log = logging.getLogger(__name__)
LOCK_FILE = ".run.lock"
ABANDONED_PROPERTY = "abandoned"


class RunLockedError(RuntimeError):
  """Another run holds this outputs root."""


@contextlib.contextmanager
def hold(output_root: str) -> Iterator[str]:
  os.makedirs(output_root, exist_ok=True)
  path = os.path.join(output_root, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
      raise RunLockedError(
          f"another run (pid {holder}) holds {path}; wait for it to finish or set a different "
          f"outputs.root") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    yield path
  finally:
    os.close(fd)  # releases the lock


def mark_abandoned(connection_config) -> List[str]:
  """Marks executions left RUNNING (by a dead process: the caller holds the run lock) as
  CANCELED with custom property `abandoned`=1 (MLMD has no ABANDONED execution state); returns
  one line per execution, which is also logged."""
  store = metadata_store.MetadataStore(connection_config)
  stale = [e for e in store.get_executions()
           if e.last_known_state == metadata_store_pb2.Execution.RUNNING]
  lines = []
  for e in stale:
    types = store.get_execution_types_by_id([e.type_id])
    name = e.properties.get("component_id") or e.custom_properties.get("component_id")
    label = name.string_value if name else (types[0].name if types else str(e.type_id))
    e.last_known_state = metadata_store_pb2.Execution.CANCELED
    e.custom_properties[ABANDONED_PROPERTY].int_value = 1
    lines.append(f"execution {e.id} ({label}) was left RUNNING by a dead run: marked abandoned")
  if stale:
    store.put_executions(stale)
  for line in lines:
    log.warning(line)
  return lines
