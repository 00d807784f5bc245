"""`python -m serving.server`: the TF-Serving-compatible development server.

`make serve` runs it with `--config configs/ames.yaml` (model name and the Pusher's base dir
from the config); explicit flags override the config. Ports default to TF Serving's 8500/8501;
0 picks a free port (printed at start-up; unlike TF Serving, where rest_api_port=0 disables REST).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading

from serving.server.app import Limits, ModelServer

log = logging.getLogger("serving.server")


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", help="pipeline config (YAML): model name and pusher base dir")
  p.add_argument("--model_name", help="model name clients use (default: config serving.model_name)")
  p.add_argument("--model_base_path", help="dir holding <version>/saved_model.pb "
                 "(default: the config's serving base dir)")
  p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
  p.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free port)")
  p.add_argument("--rest_port", "--rest_api_port", dest="rest_port", type=int, default=8501,
                 help="REST port (0: any free port)")
  p.add_argument("--poll_seconds", "--file_system_poll_wait_seconds", dest="poll_seconds",
                 type=float, default=1.0, help="how often to look for new versions (0: never)")
  d = Limits()
  p.add_argument("--max_request_bytes", type=int, default=d.max_request_bytes,
                 help="largest accepted gRPC message / REST body")
  p.add_argument("--max_batch_rows", type=int, default=d.max_batch_rows,
                 help="most rows (examples) one request may declare")
  p.add_argument("--grpc_workers", type=int, default=d.grpc_workers, help="gRPC handler threads")
  p.add_argument("--max_concurrent_rpcs", type=int, default=d.max_concurrent_rpcs,
                 help="gRPC calls in flight at once; more get RESOURCE_EXHAUSTED")
  p.add_argument("--rest_workers", type=int, default=d.rest_workers, help="REST handler threads")
  p.add_argument("--max_connections", type=int, default=d.max_connections,
                 help="REST connections open at once; more get 503")
  p.add_argument("--idle_timeout_seconds", type=float, default=d.idle_timeout_seconds,
                 help="close connections idle or stalled this long")
  p.add_argument("--log_level", default="INFO")
  args = p.parse_args(argv)
  if args.config and not (args.model_name and args.model_base_path):
    from pipeline.config import load_config
    cfg = load_config(args.config)
    args.model_name = args.model_name or cfg.serving.model_name
    args.model_base_path = args.model_base_path or cfg.serving_base_dir
  if not (args.model_name and args.model_base_path):
    p.error("give --config, or both --model_name and --model_base_path")
  for flag in ("max_request_bytes", "max_batch_rows", "grpc_workers", "max_concurrent_rpcs",
               "rest_workers", "max_connections", "idle_timeout_seconds"):
    if getattr(args, flag) <= 0:
      p.error(f"--{flag} must be > 0")
  return args


def limits(args: argparse.Namespace) -> Limits:
  return Limits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Limits)})


def main(argv=None) -> int:
  args = parse_args(argv)
  logging.basicConfig(level=args.log_level.upper(), stream=sys.stdout,
                      format="%(asctime)s %(levelname)s %(name)s: %(message)s")
  base = os.path.abspath(args.model_base_path)
  server = ModelServer({args.model_name: base}, host=args.host, grpc_port=args.port,
                       rest_port=args.rest_port, poll_seconds=args.poll_seconds,
                       limits=limits(args))
  try:
    server.start()
  except OSError as e:
    log.error("cannot start: %s", e)
    server.stop(grace=0)
    return 1
  manager = server.registry.get(args.model_name)
  version = manager.current_version
  print(f"serving model '{args.model_name}' from {base} "
        f"(version {version if version is not None else 'none yet; polling'}, "
        f"poll every {args.poll_seconds}s, max request {args.max_request_bytes} bytes / "
        f"{args.max_batch_rows} rows)")
  print(f"gRPC listening on {args.host}:{server.grpc_port}")
  print(f"REST listening on http://{args.host}:{server.rest_port}/v1/models/{args.model_name}",
        flush=True)

  stop = threading.Event()
  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *_: stop.set())
  stop.wait()
  print("shutting down", flush=True)
  server.stop()
  return 0


if __name__ == "__main__":
  sys.exit(main())
