"""ModelManager in-process: incomplete or broken versions are not served, and a swapped-out
version stays usable until its in-flight requests end (then UNLOADING -> END)."""
from __future__ import annotations

import collections
import os
import shutil
import threading
import time
from typing import Dict

import numpy as np
import pytest

from serving.server.errors import ServingError
from serving.server.model_manager import ModelManager
from serving.server.servable import Servable
from serving.testing_model import example_rows, serialize_rows


def _state(manager, version):
  return {s.version: s.state for s in manager.statuses()}.get(version)


def _wait_for(condition, message, timeout=30.0):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if condition():
      return
    time.sleep(0.01)
  raise AssertionError(message)


def _wait_state(manager, version, state, timeout=30.0):
  _wait_for(lambda: _state(manager, version) == state,
            f"version {version} never reached {state}: {manager.statuses()}", timeout)


class _WatchedServable(Servable):
  """A real Servable that counts how often an unload thread reads its in-flight count."""
  unload_reads: Dict[int, int] = collections.Counter()

  @property
  def refs(self):
    if threading.current_thread().name.startswith("unload-"):
      _WatchedServable.unload_reads[self.version] += 1
    return self._refs

  @refs.setter
  def refs(self, value):
    self._refs = value


def _examples():
  return {"examples": np.array(serialize_rows(example_rows(2)), dtype=object)}


@pytest.fixture
def unload_checks():
  _WatchedServable.unload_reads.clear()
  return lambda version: _WatchedServable.unload_reads[version]


@pytest.fixture
def manager(tmp_path, models):
  shutil.copytree(models.v1, tmp_path / "1")
  m = ModelManager("ames", str(tmp_path), poll_seconds=0,  # polled by hand below
                   loader=_WatchedServable)
  m.start()
  yield m
  m.stop()


def test_in_flight_request_keeps_old_version_until_done(manager, models, tmp_path,
                                                       unload_checks):
  with manager.acquire() as old:
    shutil.copytree(models.v2, tmp_path / "2")
    manager.poll_once()  # first sight: wait until the copy is stable
    assert manager.current_version == 1
    manager.poll_once()
    assert manager.current_version == 2
    # wait (with a deadline) until the unload thread has looked at v1's in-flight count: from
    # then on only the end of this request may let it unload v1
    _wait_for(lambda: unload_checks(1) > 0 or _state(manager, 1) == "END",
              "the unload thread never checked version 1's in-flight requests")
    assert {s.version: s.state for s in manager.statuses()} == {1: "UNLOADING", 2: "AVAILABLE"}
    out = old.run("serving_default", _examples())  # the pinned version still answers
    assert out["prediction"].shape == (2, 1)
  _wait_state(manager, 1, "END")
  with manager.acquire() as new:
    assert new.version == 2


def test_incomplete_then_broken_then_fixed_version(manager, models, tmp_path):
  partial = tmp_path / "2"
  partial.mkdir()
  shutil.copy(os.path.join(models.v2, "saved_model.pb"), partial)  # variables/ still missing
  manager.poll_once()
  manager.poll_once()  # stable but unloadable: a failed load, v1 keeps serving
  (v2,) = [s for s in manager.statuses() if s.version == 2]
  assert v2.state == "END" and v2.error_code.name != "OK" and "loading failed" in v2.error_message
  assert manager.current_version == 1
  manager.poll_once()  # unchanged: no retry storm
  assert manager.current_version == 1
  shutil.copytree(os.path.join(models.v2, "variables"), partial / "variables")
  manager.poll_once()
  manager.poll_once()
  assert manager.current_version == 2
  assert {s.version: s.state for s in manager.statuses()}[2] == "AVAILABLE"


def test_not_found_for_other_versions_and_empty_base(tmp_path, manager):
  with pytest.raises(ServingError) as info:
    with manager.acquire(version=5):
      pass
  assert info.value.code.name == "NOT_FOUND" and "Specific(ames, 5)" in info.value.message
  empty = ModelManager("other", str(tmp_path / "missing"), poll_seconds=0)
  empty.start()
  with pytest.raises(ServingError) as info:
    empty.statuses()
  assert info.value.code.name == "NOT_FOUND"
  empty.stop()
