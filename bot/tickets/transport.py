"""One HTTP call to a tracker, its failures sorted into TrackerError's two questions: can it succeed
later, and may it have been carried out although no answer came back?"""

from __future__ import annotations

import json
from typing import Any

import httpx

from vigil_ir.tickets.trackers import TicketNotFound, TrackerError

MAX_RETRY_AFTER = 900.0


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(float(value), MAX_RETRY_AFTER) if value is not None else None
    except ValueError:
        return None


def call(client: httpx.Client, method: str, url: str, *, label: str, writes: bool = False,
         **kwargs: Any) -> Any:
    """The decoded JSON answer (None for an empty one). `writes`: the call changes the tracker, so a
    lost answer leaves it uncertain whether it was carried out."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise TrackerError(f"{label}: no answer in time ({type(exc).__name__})", retry_later=True,
                           uncertain=writes) from None
    except httpx.TransportError as exc:
        # A connection that never opened carried nothing; one dropped mid-answer may have.
        opened = not isinstance(exc, httpx.ConnectError)
        raise TrackerError(f"{label}: {type(exc).__name__}: {exc}", retry_later=True,
                           uncertain=writes and opened) from None
    status = response.status_code
    # GitHub answers its rate limits with 403 (remaining 0, or a secondary limit with Retry-After).
    if status == 429 or (status == 403 and (response.headers.get("x-ratelimit-remaining") == "0"
                                            or "retry-after" in response.headers)):
        raise TrackerError(f"{label}: rate limited ({status})", retry_later=True, retry_after=_retry_after(response))
    if status >= 500:
        raise TrackerError(f"{label}: {status} {response.text[:200]}", retry_later=True, uncertain=writes,
                           retry_after=_retry_after(response))
    if status == 404:
        raise TicketNotFound(f"{label}: not found (404)")
    if status >= 400:
        raise TrackerError(f"{label}: refused ({status}): {response.text[:300]}")
    if not response.content:
        return None
    try:
        return response.json()
    except json.JSONDecodeError:
        raise TrackerError(f"{label}: the answer is not JSON ({response.text[:100]!r})", retry_later=True,
                           uncertain=writes) from None
