"""`python -m serving.client`: query TF Serving (or the dev server) from the command line.

  python -m serving.client --grpc localhost:8500 --model ames status
  python -m serving.client --rest http://localhost:8501 --model ames metadata
  python -m serving.client --grpc localhost:8500 --model ames predict --csv data/ames/ames.csv --rows 3
  python -m serving.client --rest http://localhost:8501 --config configs/ames.yaml predict \\
      --signature serving_raw --json '[{"Gr_Liv_Area": 1500, ...}]'

Rows (CSV or JSON objects of raw features) go to `serving_default` as serialized tf.Examples,
or to a raw-feature signature (e.g. serving_raw) as one tensor per feature; types come from
the model's metadata. Prints JSON; exits 1 with the server's message on errors.
"""
from __future__ import annotations

import argparse
import base64
import csv
import json
import sys
from typing import Dict, List

from serving import json_codec
from serving.client import examples as example_codec
from serving.client.errors import ServingError


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m serving.client", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  where = p.add_mutually_exclusive_group(required=True)
  where.add_argument("--grpc", metavar="HOST:PORT", help="gRPC target, e.g. localhost:8500")
  where.add_argument("--rest", metavar="URL", help="REST base URL, e.g. http://localhost:8501")
  p.add_argument("--model", help="model name (default: serving.model_name of --config)")
  p.add_argument("--config", help="pipeline config to take the model name from")
  p.add_argument("--timeout", type=float, default=10.0, help="per-request deadline, seconds")
  p.add_argument("--retries", type=int, default=3, help="retries when the server is UNAVAILABLE")
  p.add_argument("--version", type=int, help="model version (default: latest)")
  sub = p.add_subparsers(dest="command", required=True)
  sub.add_parser("status", help="model version states")
  sub.add_parser("metadata", help="signature defs")
  for name in ("predict", "regress"):
    q = sub.add_parser(name, help=f"{name} on rows of raw features")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--json", help="a JSON object or list of objects (one per row)")
    src.add_argument("--json-file", help="file holding such JSON")
    src.add_argument("--csv", help="CSV with a header row; extra columns are ignored")
    q.add_argument("--rows", type=int, default=5, help="rows to take from --csv")
    if name == "predict":
      q.add_argument("--signature", default="serving_default")
      q.add_argument("--format", choices=["rows", "columns"], default="rows",
                     help="REST: 'instances' (rows) or 'inputs' (columns)")
  args = p.parse_args(argv)
  if not args.model:
    if not args.config:
      p.error("give --model or --config")
    from pipeline.config import load_config
    args.model = load_config(args.config).serving.model_name
  return args


def read_rows(args) -> List[Dict[str, object]]:
  if args.csv:
    with open(args.csv, newline="") as f:
      reader = csv.DictReader(f)
      return [row for _, row in zip(range(args.rows), reader)]
  text = args.json if args.json is not None else open(args.json_file).read()
  data = json.loads(text)
  return [data] if isinstance(data, dict) else list(data)


def _uses_examples(dtypes: Dict[str, object], rows) -> bool:
  """A one-string-input signature fed with feature rows takes serialized tf.Examples."""
  if len(dtypes) != 1:
    return False
  (name, dtype), = dtypes.items()
  return example_codec.as_dtype(dtype).name == "string" and not (rows and name in rows[0])


def run_grpc(args) -> object:
  from google.protobuf import json_format
  from serving.client.grpc_client import GrpcClient
  with GrpcClient(args.grpc, args.model, timeout=args.timeout, retries=args.retries) as c:
    if args.command == "status":
      return c.status(args.version)
    if args.command == "metadata":
      return json_format.MessageToDict(c.metadata(args.version),
                                       preserving_proto_field_name=True)
    rows = read_rows(args)
    if args.command == "regress":
      return {"regressions": c.regress(rows, version=args.version)}
    dtypes = c.input_dtypes(args.signature)
    call = c.predict_examples if _uses_examples(dtypes, rows) else c.predict_raw
    p = call(rows, signature_name=args.signature, version=args.version)
    return {"model_spec": {"name": args.model, "version": p.version,
                           "signature_name": p.signature_name},
            "outputs": {k: json_codec.from_ndarray(k, v) for k, v in p.outputs.items()}}


def run_rest(args) -> object:
  from serving.client.rest_client import RestClient
  with RestClient(args.rest, args.model, timeout=args.timeout, retries=args.retries) as c:
    if args.command == "status":
      return c.status(args.version)
    if args.command == "metadata":
      return c.metadata(args.version)
    if args.command == "regress":
      raise SystemExit("regress is gRPC-only here; use --grpc")
    rows = read_rows(args)
    dtypes = c.input_dtypes(args.signature, args.version)
    if _uses_examples(dtypes, rows):
      (name,) = dtypes
      try:
        raw = c.input_dtypes("serving_raw", args.version)
      except ServingError:
        raw = None
      values = [{"b64": base64.b64encode(s).decode("ascii")}
                for s in example_codec.serialize(rows, raw)]
      instances = values if args.format == "rows" else None
      inputs = {name: values} if args.format == "columns" else None
    else:
      typed = example_codec.typed_rows(rows, dtypes)
      instances = typed if args.format == "rows" else None
      inputs = ({k: [r[k] for r in typed] for k in dtypes} if args.format == "columns"
                else None)
    result = c.predict(instances=instances, inputs=inputs, signature_name=args.signature,
                       version=args.version, decode_b64=False)
    return {"predictions" if args.format == "rows" else "outputs": result}


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    result = run_grpc(args) if args.grpc else run_rest(args)
  except ServingError as e:
    print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
    return 1
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(json.dumps(result, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
