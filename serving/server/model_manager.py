"""Versions of one model on disk -> the servable to use, with polling and hot swaps.

Like TF Serving's file-system source with the `latest` policy: `<base>/<int>/` dirs holding a
SavedModel are versions, the highest one is served. A new version is loaded next to the old one,
swapped in atomically, and the old one is unloaded only once its in-flight requests are done, so
a swap costs no failed request. A version dir still being written (its file sizes/mtimes change
between polls) is not loaded yet; a failed load is retried only after the dir changes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import grpc

from serving.server.errors import ServingError, not_found, sanitize
from serving.server.servable import Servable

log = logging.getLogger(__name__)

# TF Serving's ModelVersionStatus.State names.
LOADING, AVAILABLE, UNLOADING, END = "LOADING", "AVAILABLE", "UNLOADING", "END"
MAX_REMEMBERED_VERSIONS = 20
Fingerprint = Tuple[Tuple[str, int, int], ...]


@dataclasses.dataclass
class VersionStatus:
  version: int
  state: str
  error_code: grpc.StatusCode = grpc.StatusCode.OK
  error_message: str = ""


def fingerprint(path: str) -> Fingerprint:
  """(relative path, size, mtime) of every file: changes while a copy is in progress."""
  entries = []
  for root, _, files in os.walk(path):
    for f in files:
      full = os.path.join(root, f)
      try:
        st = os.stat(full)
      except OSError:  # removed while walking
        continue
      entries.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
  return tuple(sorted(entries))


def scan_versions(base_path: str) -> Dict[int, Fingerprint]:
  """Integer-named subdirectories that contain a SavedModel."""
  found = {}
  try:
    names = os.listdir(base_path)
  except OSError:
    return found
  for name in names:
    full = os.path.join(base_path, name)
    if not name.isdigit() or not os.path.isdir(full):
      continue
    if any(os.path.exists(os.path.join(full, f)) for f in ("saved_model.pb", "saved_model.pbtxt")):
      found[int(name)] = fingerprint(full)
  return found


class ModelManager:
  """Serves the latest version of one model and swaps versions without dropping requests."""

  def __init__(self, name: str, base_path: str, poll_seconds: float = 1.0,
               loader: Callable[[str, int, str], Servable] = Servable):
    self.name, self.base_path, self.poll_seconds = name, base_path, poll_seconds
    self._loader = loader
    self._cond = threading.Condition()
    self._current: Optional[Servable] = None
    self._status: Dict[int, VersionStatus] = {}
    self._seen: Dict[int, Fingerprint] = {}
    self._failed: Dict[int, Fingerprint] = {}
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None
    self._warned_missing = False

  # --- lifecycle -------------------------------------------------------------------------------
  def start(self) -> None:
    """Loads what is on disk now (blocking, like TF Serving's start-up), then polls."""
    self.poll_once(initial=True)
    if self.poll_seconds > 0:
      self._thread = threading.Thread(target=self._poll_loop, name=f"poll-{self.name}",
                                      daemon=True)
      self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread:
      self._thread.join(timeout=30)
    with self._cond:
      current, self._current = self._current, None
    if current:
      self._retire(current, wait=True)

  def _poll_loop(self) -> None:
    while not self._stop.wait(self.poll_seconds):
      try:
        self.poll_once()
      except Exception:  # a poll must never kill the poller
        log.exception("model %s: polling %s failed", self.name, self.base_path)

  # --- polling ---------------------------------------------------------------------------------
  def poll_once(self, initial: bool = False) -> None:
    if not os.path.isdir(self.base_path):
      if not self._warned_missing:
        log.warning("model %s: base path %s does not exist (yet); polling", self.name,
                    self.base_path)
        self._warned_missing = True
    found = scan_versions(self.base_path)
    stable = {v: fp for v, fp in found.items() if initial or self._seen.get(v) == fp}
    self._seen = found
    candidates = [v for v, fp in stable.items() if self._failed.get(v) != fp]
    with self._cond:
      current = self._current
    target = max(candidates) if candidates else None
    if current is not None and current.version not in found and target is None:
      log.info("model %s: version %d removed from disk; unloading", self.name, current.version)
      with self._cond:
        self._current = None
      self._retire(current)
      return
    if target is None or (current is not None and target == current.version):
      return
    if current is not None and current.version in found and target < current.version:
      return  # only while the served version's dir is still being re-written
    self._load(target, stable[target])

  def _load(self, version: int, fp: Fingerprint) -> None:
    path = os.path.join(self.base_path, str(version))
    self._set_status(version, LOADING)
    log.info("model %s: loading version %d from %s", self.name, version, path)
    try:
      servable = self._loader(self.name, version, path)
    except Exception as e:
      self._failed[version] = fp
      self._set_status(version, END, grpc.StatusCode.UNKNOWN, sanitize(f"loading failed: {e}")[:500])
      log.error("model %s: version %d failed to load: %s", self.name, version, e)
      return
    try:  # warm before the switch: the first request on the new version costs no extra
      servable.warm_up()
    except Exception:  # pylint: disable=broad-except  # warming is an optimisation only
      log.warning("model %s: warming version %d failed", self.name, version, exc_info=True)
    self._failed.pop(version, None)
    with self._cond:
      old, self._current = self._current, servable
      self._set_status(version, AVAILABLE)
    log.info("model %s: version %d AVAILABLE (signatures: %s)", self.name, version,
             ", ".join(servable.signature_names))
    if old is not None:
      self._retire(old)

  def _retire(self, old: Servable, wait: bool = False) -> None:
    """UNLOADING until the old version's in-flight requests finish, then END."""
    self._set_status(old.version, UNLOADING)

    def finish():
      with self._cond:  # at shutdown, give in-flight requests a bounded grace period
        self._cond.wait_for(lambda: old.refs == 0, timeout=10 if wait else None)
      old.unload()
      self._set_status(old.version, END)
      log.info("model %s: version %d unloaded", self.name, old.version)

    if wait:
      finish()
    else:
      threading.Thread(target=finish, name=f"unload-{self.name}-{old.version}",
                       daemon=True).start()

  def _set_status(self, version: int, state: str,
                  code: grpc.StatusCode = grpc.StatusCode.OK, message: str = "") -> None:
    with self._cond:
      self._status[version] = VersionStatus(version, state, code, message)
      while len(self._status) > MAX_REMEMBERED_VERSIONS:
        oldest = min(v for v, s in self._status.items() if s.state == END) \
            if any(s.state == END for s in self._status.values()) else None
        if oldest is None:
          break
        del self._status[oldest]

  # --- requests --------------------------------------------------------------------------------
  @contextlib.contextmanager
  def acquire(self, version: Optional[int] = None) -> Iterator[Servable]:
    """The servable for a request, pinned (not unloaded) until the `with` block ends."""
    with self._cond:
      s = self._current
      if s is None or (version is not None and s.version != version):
        wanted = f"Latest({self.name})" if version is None else f"Specific({self.name}, {version})"
        serving = [] if s is None else [s.version]
        raise not_found(f"Servable not found for request: {wanted}; model '{self.name}' "
                        f"has available version(s) {serving}")
      s.refs += 1
    try:
      yield s
    finally:
      with self._cond:
        s.refs -= 1
        if s.refs == 0:
          self._cond.notify_all()

  @property
  def current_version(self) -> Optional[int]:
    with self._cond:
      return self._current.version if self._current else None

  def statuses(self, version: Optional[int] = None) -> List[VersionStatus]:
    """Known versions, newest first (TF Serving's GetModelStatus); NOT_FOUND if none match."""
    with self._cond:
      known = sorted(self._status.values(), key=lambda s: -s.version)
    if version is not None:
      known = [s for s in known if s.version == version]
      if not known:
        raise not_found(f"Could not find version {version} of model {self.name}")
    if not known:
      raise not_found(f"Could not find any versions of model {self.name}")
    return [dataclasses.replace(s) for s in known]


class ModelRegistry:
  """Model name -> ModelManager (one model in practice; the API mirrors TF Serving's)."""

  def __init__(self, managers: Dict[str, ModelManager]):
    self.managers = dict(managers)

  def get(self, name: str) -> ModelManager:
    if not name:
      raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "model_spec.name is required")
    try:
      return self.managers[name]
    except KeyError:
      raise not_found(f"Servable not found for request: Latest({name}); this server serves "
                      f"{sorted(self.managers)}") from None
