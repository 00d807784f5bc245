"""Start the dev server as a subprocess on free ports and wait until it serves a model.

For tests and benchmarks: a real server process (real gRPC/HTTP), ephemeral ports (the server
binds port 0 and prints what it got, so there is no pick-then-bind race), bounded waits, and
the server's output kept for failure messages.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from typing import List, Optional, Sequence

import requests

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GRPC_LINE = re.compile(r"^gRPC listening on (\S+):(\d+)")
_REST_LINE = re.compile(r"^REST listening on (http://\S+?:\d+)/")


class ServerProcess:
  """A running `python -m serving.server`; use as a context manager or call stop()."""

  def __init__(self, proc: subprocess.Popen, model_name: str):
    self.proc, self.model_name = proc, model_name
    self.lines: List[str] = []
    self.grpc_target: Optional[str] = None
    self.rest_url: Optional[str] = None
    self._ports = threading.Event()
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self) -> None:
    for line in self.proc.stdout:
      line = line.rstrip("\n")
      self.lines.append(line)
      m = _GRPC_LINE.match(line)
      if m:
        self.grpc_target = f"{m.group(1)}:{m.group(2)}"
      m = _REST_LINE.match(line)
      if m:
        self.rest_url = m.group(1)
      if self.grpc_target and self.rest_url:
        self._ports.set()
    self._ports.set()  # process ended: unblock waiters

  def output(self, last: int = 60) -> str:
    return "\n".join(self.lines[-last:])

  def wait_for_ports(self, timeout: float) -> None:
    self._ports.wait(timeout)
    if not (self.grpc_target and self.rest_url):
      self.stop()
      raise RuntimeError(f"dev server did not report its ports within {timeout}s "
                         f"(exit code {self.proc.poll()}):\n{self.output()}")

  def wait_for_version(self, version: Optional[int] = None, timeout: float = 60.0) -> int:
    """Polls REST status until `version` (default: any) is AVAILABLE; returns that version."""
    deadline = time.monotonic() + timeout
    url = f"{self.rest_url}/v1/models/{self.model_name}"
    last = None
    while time.monotonic() < deadline:
      if self.proc.poll() is not None:
        break
      try:
        r = requests.get(url, timeout=2)
        last = r.text
        if r.status_code == 200:
          for s in r.json()["model_version_status"]:
            if s["state"] == "AVAILABLE" and version in (None, int(s["version"])):
              return int(s["version"])
      except requests.RequestException as e:
        last = repr(e)
      time.sleep(0.1)
    raise TimeoutError(f"version {version or 'any'} of {self.model_name} not AVAILABLE within "
                       f"{timeout}s; last status: {last}\nserver output:\n{self.output()}")

  def stop(self, timeout: float = 15.0) -> None:
    if self.proc.poll() is None:
      self.proc.terminate()
      try:
        self.proc.wait(timeout)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait(5)
    self._reader.join(timeout=5)

  def __enter__(self) -> "ServerProcess":
    return self

  def __exit__(self, *exc) -> None:
    self.stop()


def start_server(model_base_path: str, model_name: str, extra_args: Sequence[str] = (),
                 timeout: float = 120.0, wait_available: bool = True,
                 python: str = sys.executable) -> ServerProcess:
  """Launches the server on 127.0.0.1 with ephemeral ports; waits for a loaded model."""
  env = dict(os.environ)
  env["TF_USE_LEGACY_KERAS"] = "1"
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
  env["PYTHONUNBUFFERED"] = "1"
  cmd = [python, "-m", "serving.server", "--model_base_path", model_base_path,
         "--model_name", model_name, "--host", "127.0.0.1", "--port", "0", "--rest_port", "0",
         *extra_args]
  proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, bufsize=1)
  server = ServerProcess(proc, model_name)
  start = time.monotonic()
  server.wait_for_ports(timeout)
  if wait_available:
    try:
      server.wait_for_version(timeout=max(5.0, timeout - (time.monotonic() - start)))
    except BaseException:
      server.stop()
      raise
  return server
