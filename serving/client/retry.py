"""Retry with exponential backoff and jitter, on UnavailableError only.

Other errors (bad input, unknown model, deadline) would fail again the same way, and a
deadline already used up the caller's time budget.
"""
from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

from serving.client.errors import UnavailableError

T = TypeVar("T")


def call_with_retries(fn: Callable[[], T], retries: int = 3, backoff: float = 0.1,
                      max_backoff: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> T:
  """fn(); on UnavailableError waits backoff * 2**attempt (jittered) and tries again."""
  attempt = 0
  while True:
    try:
      return fn()
    except UnavailableError as e:
      e.attempts = attempt + 1
      if attempt >= retries:
        raise
      sleep(min(max_backoff, backoff * 2 ** attempt) * random.uniform(0.5, 1.0))
      attempt += 1
