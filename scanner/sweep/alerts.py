"""Webhook alerts: POST one JSON message per sweep with its changes, from a background thread.

What is sent (``Content-Type: application/json``)::

    {"id": "camsweep-<site>-<sweep id>",       the same on every retry: receivers can de-duplicate
     "source": "camsweep", "version": "...", "site": "...", "sweep_id": 12, "previous_sweep_id": 11,
     "finished_at": "2025-01-01T02:00:09+00:00", "level": "high", "threshold": "low",
     "summary": "...", "text": "...",         "text" makes Slack/Mattermost-style incoming hooks show it
     "changes": [{"kind", "level", "identity", "ip", "device", "subject", "before", "after", "text"}, ...]}

Delivery never blocks a sweep: ``submit`` queues the message and returns. A worker thread posts
it, retrying connection failures, timeouts, 408/425/429 and 5xx answers with exponential backoff
(full jitter, ``Retry-After`` honoured up to the cap) until it is accepted (2xx), refused for good
(any other status: a wrong URL does not get better by retrying) or the message's overall
deadline passes. Redirects are not followed (a redirect is reported as a refusal).
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import scanner
from scanner.errors import UsageError
from scanner.sweep.diff import LEVELS, Change

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class Response:
    status: int
    retry_after: float | None = None


# The transport seam: (url, body, headers, timeout seconds) -> Response; raises OSError (or a
# requests exception) when nothing came back.
Transport = Callable[[str, bytes, dict[str, str], float], Response]


def requests_transport(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """One real HTTP POST (requests), no redirects followed."""
    import requests

    reply = requests.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    reply.close()
    return Response(reply.status_code, _retry_after(reply.headers.get("Retry-After")))


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def check_webhook_url(url: str) -> str:
    """An http(s) URL with a host, or UsageError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--alert-webhook needs an http:// or https:// URL, got {url!r}")
    return url.strip()


@dataclass
class Delivery:
    """What became of one message (filled in by the worker thread)."""

    message_id: str
    attempts: int = 0
    delivered: bool = False
    status: int | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def describe(self) -> str:
        if self.delivered:
            return f"alert {self.message_id} delivered (HTTP {self.status}, attempt {self.attempts})"
        why = self.error or (f"HTTP {self.status}" if self.status is not None else "not sent")
        return f"alert {self.message_id} NOT delivered after {self.attempts} attempts: {why}"


@dataclass
class RetryPolicy:
    attempts: int = 8
    first_delay: float = 1.0  # seconds before the 2nd attempt (doubling after that)
    max_delay: float = 60.0
    deadline: float = 300.0  # overall seconds for one message, from submit
    timeout: float = 10.0  # one attempt

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Full-jitter exponential backoff after ``attempt`` failed attempts."""
        cap = min(self.max_delay, self.first_delay * (2 ** (attempt - 1)))
        wait = rng.uniform(cap / 2, cap)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


class WebhookSender:
    """Posts queued messages to one webhook from a daemon thread (started on first submit)."""

    def __init__(self, url: str, *, policy: RetryPolicy | None = None, transport: Transport | None = None,
                 on_done: Callable[[Delivery], None] | None = None, seed: int | None = None) -> None:
        self.url = check_webhook_url(url)
        self.policy = policy or RetryPolicy()
        self.transport = transport or requests_transport
        self.on_done = on_done
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[tuple[dict[str, Any], Delivery, float] | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random(seed)

    def submit(self, message: dict[str, Any]) -> Delivery:
        """Queue ``message``; returns at once with its (pending) delivery record."""
        delivery = Delivery(str(message.get("id") or f"message-{len(self.deliveries) + 1}"))
        self.deliveries = [d for d in self.deliveries if not d.done.is_set()]  # a daemon runs for months
        self.deliveries.append(delivery)
        self._queue.put((message, delivery, time.monotonic() + self.policy.deadline))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="camsweep-webhook", daemon=True)
            self._thread.start()
        return delivery

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every submitted message is delivered or given up; False on timeout."""
        limit = None if timeout is None else time.monotonic() + timeout
        for delivery in list(self.deliveries):
            left = None if limit is None else max(0.0, limit - time.monotonic())
            if not delivery.done.wait(left):
                return False
        return True

    def close(self, timeout: float = 0.0) -> None:
        """Stop the worker (after waiting up to ``timeout`` for pending messages)."""
        self.wait(timeout)
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(1.0)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            message, delivery, deadline = item
            try:
                self._deliver(message, delivery, deadline)
            finally:
                delivery.done.set()
                if self.on_done is not None:
                    try:
                        self.on_done(delivery)
                    except Exception:  # noqa: BLE001 - a reporting callback must not kill the worker
                        pass

    def _deliver(self, message: dict[str, Any], delivery: Delivery, deadline: float) -> None:
        body = json.dumps(message, default=str).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"camsweep/{scanner.__version__}",
                   "X-Camsweep-Delivery": delivery.message_id}
        policy = self.policy
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                delivery.error = (delivery.error or "no answer") + f" (gave up after {policy.deadline:g}s)"
                return
            delivery.attempts += 1
            retry_after = None
            try:
                reply = self.transport(self.url, body, headers, min(policy.timeout, left))
            except Exception as exc:  # noqa: BLE001 - any transport failure is retried
                delivery.error = _one_line(exc)
                delivery.status = None
            else:
                delivery.status = reply.status
                retry_after = reply.retry_after
                if 200 <= reply.status < 300:
                    delivery.delivered = True
                    delivery.error = None
                    return
                delivery.error = f"HTTP {reply.status}"
                if reply.status not in RETRY_STATUSES:
                    delivery.error += " (not retried)"
                    return
            if delivery.attempts >= policy.attempts:
                return
            wait = policy.delay(delivery.attempts, self._rng, retry_after)
            if time.monotonic() + wait >= deadline:
                delivery.error = (delivery.error or "") + f" (gave up: the {policy.deadline:g}s deadline)"
                return
            if self._stop.wait(wait):
                return


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def alert_message(*, site: str, sweep_id: int, previous_sweep_id: int | None, finished_at: float,
                  changes: list[Change], threshold: str) -> dict[str, Any]:
    """The JSON message for a sweep's alertable changes (see the module docstring)."""
    counts = {level: sum(1 for c in changes if c.level == level) for level in LEVELS}
    parts = ", ".join(f"{n} {level}" for level, n in counts.items() if n)
    top = next((level for level in LEVELS if counts[level]), "info")
    summary = f"camsweep: site {site}: {len(changes)} change{'s' if len(changes) != 1 else ''} ({parts}) " \
              f"in sweep {sweep_id}"
    lines = [summary] + [f"[{c.level}] {c.kind}: {c.text}" for c in changes]
    return {
        "id": f"camsweep-{site}-{sweep_id}",
        "source": "camsweep",
        "version": scanner.__version__,
        "site": site,
        "sweep_id": sweep_id,
        "previous_sweep_id": previous_sweep_id,
        "finished_at": datetime.fromtimestamp(finished_at, UTC).isoformat(timespec="seconds"),
        "level": top,
        "threshold": threshold,
        "summary": summary,
        "text": "\n".join(lines),
        "changes": [{k: v for k, v in c.to_dict().items() if k not in ("suppressed", "known_from")} for c in changes],
    }
