"""TF-Serving-compatible development server: `python -m serving.server` (see serving/README.md)."""
