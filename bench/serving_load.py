"""Serving under concurrent load: throughput at 1/4/16 clients and p99 latency during hot swaps.

Why: a single sequential client (bench/serving.py's table) shows per-request overhead, not what
the server sustains with many clients, nor what a version swap costs the requests in flight.
The swap goal (issue #17): p99 during a swap <= 3x the steady-state p99. Swaps copy a new
version dir into the base path (as the Pusher does); the window runs from the copy until the
old version is END plus a second, so it covers polling, loading, warming, switching and
unloading. Every client loop is bounded by a deadline.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from serving.client import GrpcClient, RestClient

CLIENTS = (1, 4, 16)
SWAP_CLIENTS = 4


def _loop(call: Callable[[], object], stop: threading.Event, out: List[Tuple[float, float]],
          errors: List[str], max_seconds: float) -> None:
  end = time.monotonic() + max_seconds
  while not stop.is_set() and time.monotonic() < end:
    t0 = time.perf_counter()
    try:
      call()
    except Exception as e:  # pylint: disable=broad-except
      errors.append(repr(e)[:200])
      continue
    out.append((time.monotonic(), time.perf_counter() - t0))


def throughput(make_call: Callable[[], Tuple[Callable[[], object], object]], clients: int,
               seconds: float) -> Tuple[float, float, int]:
  """(requests/s, p99 s, errors) of `clients` threads, each with its own client connection."""
  stop = threading.Event()
  samples: List[List[Tuple[float, float]]] = [[] for _ in range(clients)]
  errors: List[str] = []
  made = [make_call() for _ in range(clients)]
  for call, _ in made:  # connect and warm each client
    call()
  threads = [threading.Thread(target=_loop, args=(m[0], stop, s, errors, seconds + 30),
                              daemon=True) for m, s in zip(made, samples)]
  t0 = time.monotonic()
  for t in threads:
    t.start()
  time.sleep(seconds)
  stop.set()
  for t in threads:
    t.join(60)
  wall = time.monotonic() - t0
  for _, client in made:
    client.close()
  lat = [d for s in samples for _, d in s]
  return len(lat) / wall, float(np.percentile(lat, 99)) if lat else float("nan"), len(errors)


def throughput_table(target: str, rest_url: str, name: str, examples: np.ndarray, b64: list,
                     seconds: float) -> List[str]:
  def grpc_call():
    c = GrpcClient(target, name, retries=0, timeout=60)
    return (lambda: c.predict({"examples": examples})), c

  def rest_call():
    c = RestClient(rest_url, name, retries=0, timeout=60)
    return (lambda: c.predict(instances=b64)), c

  lines = ["| path | clients | requests/s | p99 ms | errors |", "|---|---:|---:|---:|---:|"]
  for path, make in (("gRPC", grpc_call), ("REST", rest_call)):
    for n in CLIENTS:
      rps, p99, errs = throughput(make, n, seconds)
      lines.append(f"| {path} | {n} | {rps:,.0f} | {p99 * 1e3:.1f} | {errs} |")
  return lines


def _states(rest_url: str, name: str) -> Dict[int, str]:
  with RestClient(rest_url, name, retries=0, timeout=10) as r:
    return {int(s["version"]): s["state"] for s in r.status()["model_version_status"]}


def swap_p99(target: str, rest_url: str, name: str, base: str, model_dir: str,
             examples: np.ndarray, swaps: int, steady_seconds: float) -> Dict[str, float]:
  """p50/p99 (s) of 1-row gRPC requests from SWAP_CLIENTS clients, steady vs during swaps."""
  clients = [GrpcClient(target, name, retries=0, timeout=60) for _ in range(SWAP_CLIENTS)]
  for c in clients:
    c.predict({"examples": examples})
  stop = threading.Event()
  samples: List[List[Tuple[float, float]]] = [[] for _ in clients]
  errors: List[str] = []
  budget = steady_seconds + swaps * 60 + 60
  threads = [threading.Thread(target=_loop, args=(lambda c=c: c.predict({"examples": examples}),
                                                  stop, s, errors, budget), daemon=True)
             for c, s in zip(clients, samples)]
  for t in threads:
    t.start()
  time.sleep(steady_seconds)
  steady_end = time.monotonic()
  windows = []
  for _ in range(swaps):
    current = max(_states(rest_url, name))
    new = current + 1
    start = time.monotonic()
    tmp = os.path.join(base, f".incoming-{new}")
    shutil.copytree(model_dir, tmp)
    os.rename(tmp, os.path.join(base, str(new)))
    deadline = start + 120
    while time.monotonic() < deadline and _states(rest_url, name).get(current) != "END":
      time.sleep(0.05)
    time.sleep(1.0)
    windows.append((start, time.monotonic()))
    time.sleep(1.0)
  stop.set()
  for t in threads:
    t.join(60)
  for c in clients:
    c.close()
  allv = [x for s in samples for x in s]
  steady = [d for ts, d in allv if ts <= steady_end]
  during = [d for ts, d in allv if any(a <= ts <= b for a, b in windows)]
  return {"steady_p50": float(np.percentile(steady, 50)),
          "steady_p99": float(np.percentile(steady, 99)),
          "swap_p50": float(np.percentile(during, 50)),
          "swap_p99": float(np.percentile(during, 99)),
          "steady_n": len(steady), "swap_n": len(during), "errors": len(errors),
          "swap_seconds": float(np.mean([b - a for a, b in windows]))}


def swap_lines(r: Dict[str, float], swaps: int) -> List[str]:
  ratio = r["swap_p99"] / r["steady_p99"]
  return [
      f"| phase | requests | p50 ms | p99 ms |", "|---|---:|---:|---:|",
      f"| steady state | {r['steady_n']} | {r['steady_p50'] * 1e3:.1f} | "
      f"{r['steady_p99'] * 1e3:.1f} |",
      f"| during {swaps} hot swaps (mean window {r['swap_seconds']:.1f} s) | {r['swap_n']} | "
      f"{r['swap_p50'] * 1e3:.1f} | {r['swap_p99'] * 1e3:.1f} |",
      "",
      f"- p99 during swaps / steady p99: {ratio:.2f}x (goal <= 3x: "
      f"{'met' if ratio <= 3 else 'NOT met'}); failed requests: {r['errors']}",
  ]
