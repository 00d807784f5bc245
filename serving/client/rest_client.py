"""REST client for TF Serving's /v1/models API (row "instances" and columnar "inputs" formats)."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

import requests

from serving import json_codec
from serving.client.errors import (DeadlineExceededError, ServingError, UnavailableError,
                                   from_http)
from serving.client.retry import call_with_retries


class RestClient:
  """One model at `base_url` (e.g. http://localhost:8501); retries 503/unreachable with backoff."""

  def __init__(self, base_url: str, model_name: str, timeout: float = 10.0, retries: int = 3,
               backoff: float = 0.1, session: Optional[requests.Session] = None):
    self.base_url, self.model_name = base_url.rstrip("/"), model_name
    self.timeout, self.retries, self.backoff = timeout, retries, backoff
    self.session = session or requests.Session()

  def close(self) -> None:
    self.session.close()

  def __enter__(self) -> "RestClient":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def url(self, version: Optional[int] = None, suffix: str = "") -> str:
    path = f"{self.base_url}/v1/models/{self.model_name}"
    if version is not None:
      path += f"/versions/{int(version)}"
    return path + suffix

  def _request(self, method: str, url: str, payload: Any = None,
               timeout: Optional[float] = None) -> Any:
    def once():
      try:
        r = self.session.request(method, url, json=payload, timeout=timeout or self.timeout)
      except requests.Timeout as e:
        raise DeadlineExceededError(f"{method} {url}: timed out ({e})") from None
      except requests.ConnectionError as e:
        raise UnavailableError(f"{method} {url}: cannot connect ({e})") from None
      try:
        body = r.json()
      except ValueError:
        body = {"error": r.text[:500]}
      if r.status_code != 200:
        message = body.get("error", r.text[:500]) if isinstance(body, dict) else r.text[:500]
        raise from_http(r.status_code, message)
      return body
    return call_with_retries(once, retries=self.retries, backoff=self.backoff)

  def status(self, version: Optional[int] = None, timeout: Optional[float] = None) -> Dict:
    """{"model_version_status": [{"version", "state", "status": {...}}]}"""
    return self._request("GET", self.url(version), timeout=timeout)

  def metadata(self, version: Optional[int] = None, timeout: Optional[float] = None) -> Dict:
    """{"model_spec": ..., "metadata": {"signature_def": {"signature_def": {...}}}}"""
    return self._request("GET", self.url(version, "/metadata"), timeout=timeout)

  def input_dtypes(self, signature_name: str, version: Optional[int] = None) -> Dict[str, str]:
    """Input name -> dtype enum name ('DT_FLOAT') of a signature, from the metadata."""
    sigs = self.metadata(version)["metadata"]["signature_def"]["signature_def"]
    if signature_name not in sigs:
      raise ServingError(f"signature '{signature_name}' not in model; it has {sorted(sigs)}")
    return {k: v["dtype"] for k, v in sigs[signature_name]["inputs"].items()}

  def predict(self, instances: Optional[Sequence[Any]] = None,
              inputs: Optional[Any] = None, signature_name: Optional[str] = None,
              version: Optional[int] = None, timeout: Optional[float] = None,
              decode_b64: bool = True) -> Any:
    """Row format (`instances` -> predictions) or columnar (`inputs` -> outputs).

    bytes / numpy values are encoded for JSON ({"b64": ...} for bytes), and {"b64"} values in
    the answer decoded back to bytes unless decode_b64=False.
    """
    if (instances is None) == (inputs is None):
      raise ValueError("give exactly one of instances= (row format) or inputs= (columnar)")
    payload: Dict[str, Any] = {}
    if signature_name:
      payload["signature_name"] = signature_name
    if instances is not None:
      payload["instances"] = json_codec.encode_value(list(instances))
    else:
      payload["inputs"] = json_codec.encode_value(
          dict(inputs) if isinstance(inputs, Mapping) else inputs)
    body = self._request("POST", self.url(version, ":predict"), payload, timeout)
    result = body["predictions"] if instances is not None else body["outputs"]
    return json_codec.decode_value(result) if decode_b64 else result
