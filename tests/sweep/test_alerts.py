"""Webhook alerts against a real HTTP receiver on 127.0.0.1: delivery, retries, giving up, never blocking."""

from __future__ import annotations

import random
import socket

import pytest

from scanner.errors import UsageError
from scanner.sweep.alerts import (
    Response,
    RetryPolicy,
    WebhookSender,
    alert_message,
    check_webhook_url,
)
from scanner.sweep.diff import Change
from tests.sweep.receiver import Receiver

FAST = RetryPolicy(attempts=4, first_delay=0.01, max_delay=0.05, deadline=30.0, timeout=5.0)


def changes() -> list[Change]:
    return [
        Change(kind="picture-cloud-added", level="high", identity="c0:56:e3:00:00:01", ip="198.51.100.11",
               device="Hikvision DS-2CD2386G2-IU", subject="storeface-pic.oss-cn-hangzhou.aliyuncs.com",
               text="Hikvision DS-2CD2386G2-IU at 198.51.100.11 sends to storeface-pic..."),
        Change(kind="firmware-changed", level="low", identity="ac:cc:8e:00:00:02", ip="198.51.100.12",
               device="Axis AXIS P3245-LV", subject="firmware", before="10.12.114", after="10.12.200",
               text="Axis AXIS P3245-LV at 198.51.100.12: firmware 10.12.114 -> 10.12.200"),
    ]


def message(sweep_id: int = 7) -> dict:
    return alert_message(site="store-042", sweep_id=sweep_id, previous_sweep_id=6, finished_at=1_750_000_000.0,
                         changes=changes(), threshold="low")


def test_the_message_names_the_sweep_and_every_change():
    msg = message()
    assert msg["id"] == "camsweep-store-042-7"
    assert (msg["site"], msg["sweep_id"], msg["previous_sweep_id"], msg["level"]) == ("store-042", 7, 6, "high")
    assert msg["finished_at"] == "2025-06-15T15:06:40+00:00"
    assert msg["summary"] == "camsweep: site store-042: 2 changes (1 high, 1 low) in sweep 7"
    assert msg["text"].splitlines()[1].startswith("[high] picture-cloud-added: ")
    assert [c["kind"] for c in msg["changes"]] == ["picture-cloud-added", "firmware-changed"]
    assert "suppressed" not in msg["changes"][0]


def test_an_alert_is_posted_as_json():
    with Receiver() as receiver:
        sender = WebhookSender(receiver.url, policy=FAST)
        delivery = sender.submit(message())
        assert sender.wait(30)
        sender.close()
        assert delivery.delivered and (delivery.attempts, delivery.status) == (1, 200)
        assert receiver.messages() == [message()]
        headers = receiver.headers[0]
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Camsweep-Delivery"] == "camsweep-store-042-7"
        assert headers["User-Agent"].startswith("camsweep/")


def test_server_errors_are_retried_until_accepted():
    with Receiver(statuses=[503, 502, 200]) as receiver:
        sender = WebhookSender(receiver.url, policy=FAST)
        delivery = sender.submit(message())
        sender.wait(30)
        sender.close()
    assert delivery.delivered and delivery.attempts == 3
    assert len(receiver.bodies) == 3 and len({bytes(b) for b in receiver.bodies}) == 1  # the same message


def test_a_refusal_is_not_retried():
    with Receiver(statuses=[404]) as receiver:
        sender = WebhookSender(receiver.url, policy=FAST)
        delivery = sender.submit(message())
        sender.wait(30)
        sender.close()
    assert not delivery.delivered and delivery.attempts == 1
    assert delivery.describe() == "alert camsweep-store-042-7 NOT delivered after 1 attempts: HTTP 404 (not retried)"


def test_a_dead_receiver_is_given_up_after_the_allowed_attempts():
    with socket.socket() as s:  # a port on 127.0.0.1 that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = WebhookSender(f"http://127.0.0.1:{port}/hook", policy=FAST)
    delivery = sender.submit(message())
    assert sender.wait(30)
    sender.close()
    assert not delivery.delivered and delivery.attempts == FAST.attempts
    assert "ConnectionError" in (delivery.error or "")


def test_submit_never_waits_for_the_receiver():
    with Receiver() as receiver:
        receiver.hold.clear()  # the receiver accepts the request and then sits on it
        sender = WebhookSender(receiver.url, policy=FAST)
        first = sender.submit(message(1))
        second = sender.submit(message(2))
        assert not first.done.is_set() and not second.done.is_set()  # both queued, neither sent yet
        receiver.hold.set()
        assert sender.wait(30)
        sender.close()
        assert [m["sweep_id"] for m in receiver.messages()] == [1, 2]


def test_the_deadline_bounds_delivery_whatever_the_receiver_does():
    calls = []

    def always_busy(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        calls.append(timeout)
        return Response(503, retry_after=3600)

    policy = RetryPolicy(attempts=100, first_delay=0.01, max_delay=0.02, deadline=0.5, timeout=5.0)
    sender = WebhookSender("http://127.0.0.1:9/hook", policy=policy, transport=always_busy)
    delivery = sender.submit(message())
    assert sender.wait(30)
    sender.close()
    assert not delivery.delivered and 1 <= delivery.attempts < 100
    assert all(t <= 0.5 for t in calls)  # no attempt may outlive the deadline
    assert "deadline" in (delivery.error or "")


def test_backoff_doubles_with_jitter_and_honours_retry_after_up_to_the_cap():
    policy = RetryPolicy(first_delay=1.0, max_delay=60.0)
    rng = random.Random(1)
    for attempt, cap in ((1, 1.0), (2, 2.0), (3, 4.0), (8, 60.0)):
        assert cap / 2 <= policy.delay(attempt, rng, None) <= cap
    assert policy.delay(1, rng, 30.0) == 30.0
    assert policy.delay(1, rng, 9999.0) == 60.0


def test_transport_exceptions_of_any_kind_are_retried():
    outcomes: list[object] = [OSError("connection reset"), ValueError("garbled reply"), Response(204)]

    def flaky(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, Response)
        return outcome

    sender = WebhookSender("http://127.0.0.1:9/hook", policy=FAST, transport=flaky)
    delivery = sender.submit(message())
    sender.wait(30)
    sender.close()
    assert delivery.delivered and delivery.attempts == 3


@pytest.mark.parametrize("url", ["ftp://example.org/x", "127.0.0.1:8080/hook", "http://", "hook"])
def test_bad_webhook_urls_are_usage_errors(url):
    with pytest.raises(UsageError, match="--alert-webhook needs an http:// or https:// URL"):
        check_webhook_url(url)
