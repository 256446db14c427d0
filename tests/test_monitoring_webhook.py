"""Webhook delivery of alert events against a real HTTP receiver on loopback, and
the alert log."""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from modelloop.errors import InvalidArgument
from modelloop.monitoring.alerting import OpenAlert, event_payload, transition
from modelloop.monitoring.rules import evaluate_rules, load_rules
from modelloop.monitoring.webhook import (
    ALERT_LOGGER,
    DeliveryResult,
    WebhookNotifier,
    log_alert_event,
    redacted_url,
)

TOKEN = "SECRET-t0k3n"
AUTH = "Bearer very-private-value"
PAYLOAD: dict[str, Any] = {
    "id": 17,
    "state": "firing",
    "rule": "dataset drift",
    "severity": "critical",
    "value": 0.4,
    "column": None,
    "summary": "FIRING critical alert 'dataset drift' on monitor churn: ünïcode",
}


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # wait (until the test ends) before answering


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook receiver on a free loopback port answering from a script of replies
    (200 once the script is used up) and recording every request."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.received: list[Received] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body))
                    reply = receiver.script.pop(0) if receiver.script else Reply()
                if reply.hang:
                    receiver.release.wait(10)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting: that is the point of a hang

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{port}/hooks/T0/abc?token={TOKEN}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def bodies(self) -> list[Any]:
        return [json.loads(r.body) for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.release.set()
        r.server.shutdown()
        r.server.server_close()
        r.thread.join(10)


class Sleeps:
    """A no-op sleep that records the delays asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook?token={TOKEN}"


def notifier(url: str, sleeps: Sleeps, **kwargs: Any) -> WebhookNotifier:
    return WebhookNotifier(url, headers={"Authorization": AUTH}, sleep=sleeps, **kwargs)


def assert_no_secrets(text: str) -> None:
    assert TOKEN not in text
    assert "very-private-value" not in text


# -- delivery and retries ----------------------------------------------------------


def test_delivery_is_retried_until_the_receiver_accepts(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.script = [Reply(503), Reply(503)]
    sleeps = Sleeps()
    result = notifier(receiver.url, sleeps).deliver(PAYLOAD)
    assert result == DeliveryResult(ok=True, attempts=3, status=200, error=None)
    assert receiver.bodies() == [PAYLOAD, PAYLOAD, PAYLOAD]
    last = receiver.received[-1]
    assert last.path == f"/hooks/T0/abc?token={TOKEN}"
    assert last.headers["Content-Type"] == "application/json"
    assert last.headers["Authorization"] == AUTH
    # Attempt n waits between half and all of 0.5 * 2 ** (n - 1) seconds.
    assert len(sleeps.delays) == 2
    assert 0.25 <= sleeps.delays[0] <= 0.5 <= sleeps.delays[1] <= 1.0
    assert "attempt 1/5 failed (HTTP 503 Service Unavailable)" in caplog.text
    assert "http://127.0.0.1:" in caplog.text and "/hooks/T0/abc" in caplog.text
    assert_no_secrets(caplog.text)


def test_client_error_is_not_retried(receiver: Receiver) -> None:
    receiver.script = [Reply(400)]
    sleeps = Sleeps()
    result = notifier(receiver.url, sleeps).deliver(PAYLOAD)
    assert result == DeliveryResult(False, 1, 400, "HTTP 400 Bad Request")
    assert len(receiver.received) == 1
    assert sleeps.delays == []


def test_server_errors_exhaust_the_attempts(receiver: Receiver) -> None:
    receiver.script = [Reply(500), Reply(502), Reply(503)]
    sleeps = Sleeps()
    result = notifier(receiver.url, sleeps, max_attempts=3).deliver(PAYLOAD)
    assert result == DeliveryResult(False, 3, 503, "HTTP 503 Service Unavailable")
    assert len(receiver.received) == 3
    assert len(sleeps.delays) == 2


def test_dead_port_fails_after_max_attempts_with_growing_delays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sleeps = Sleeps()
    result = notifier(dead_url(), sleeps, max_attempts=6, backoff_initial=0.1).deliver(PAYLOAD)
    assert not result.ok
    assert (result.attempts, result.status) == (6, None)
    assert result.error is not None and "ConnectError" in result.error
    assert len(sleeps.delays) == 5
    assert all(a < b for a, b in zip(sleeps.delays, sleeps.delays[1:], strict=False))
    for attempt, delay in enumerate(sleeps.delays, start=1):
        base = 0.1 * 2 ** (attempt - 1)
        assert base / 2 <= delay <= base
    assert "giving up after 6 attempt(s)" in caplog.text
    assert_no_secrets(caplog.text)
    assert_no_secrets(result.error)


def test_backoff_is_capped() -> None:
    sleeps = Sleeps()
    result = notifier(
        dead_url(), sleeps, max_attempts=8, backoff_initial=1.0, backoff_max=3.0
    ).deliver(PAYLOAD)
    assert result.attempts == 8
    assert len(sleeps.delays) == 7
    assert all(0.5 <= d <= 3.0 for d in sleeps.delays)
    assert all(d >= 1.5 for d in sleeps.delays[2:])


def test_jitter_is_seedable() -> None:
    import random

    def delays(seed: int) -> list[float]:
        n = WebhookNotifier("http://127.0.0.1:9/", rng=random.Random(seed))
        return [n.backoff(a) for a in range(1, 6)]

    assert delays(1) == delays(1)
    assert delays(1) != delays(2)


@pytest.mark.parametrize(
    ("retry_after", "backoff_max", "expected"),
    [("7", 30.0, 7.0), ("120", 10.0, 10.0), ("0", 30.0, 0.0), ("  2.5 ", 30.0, 2.5)],
)
def test_retry_after_seconds_is_honoured_and_capped(
    receiver: Receiver, retry_after: str, backoff_max: float, expected: float
) -> None:
    receiver.script = [Reply(429, {"Retry-After": retry_after})]
    sleeps = Sleeps()
    result = notifier(receiver.url, sleeps, backoff_max=backoff_max).deliver(PAYLOAD)
    assert (result.ok, result.attempts) == (True, 2)
    assert sleeps.delays == [expected]


def test_retry_after_http_date_and_garbage(receiver: Receiver) -> None:
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    receiver.script = [
        Reply(503, {"Retry-After": later}),
        Reply(503, {"Retry-After": "soon, promise"}),
    ]
    sleeps = Sleeps()
    result = notifier(receiver.url, sleeps, backoff_initial=0.2).deliver(PAYLOAD)
    assert (result.ok, result.attempts) == (True, 3)
    date_delay, garbage_delay = sleeps.delays
    assert 10 < date_delay <= 20
    # An unreadable Retry-After falls back to the backoff of attempt 2.
    assert 0.2 <= garbage_delay <= 0.4


def test_timeout_is_retried(receiver: Receiver) -> None:
    receiver.script = [Reply(hang=True)]
    sleeps = Sleeps()
    result = notifier(receiver.url, sleeps, timeout=0.3).deliver(PAYLOAD)
    assert result == DeliveryResult(True, 2, 200, None)
    assert len(sleeps.delays) == 1
    assert receiver.bodies() == [PAYLOAD, PAYLOAD]


def test_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.script = [Reply(307, {"Location": "http://127.0.0.1:9/elsewhere"})]
    result = notifier(receiver.url, Sleeps()).deliver(PAYLOAD)
    assert (result.ok, result.attempts, result.status) == (False, 1, 307)
    assert len(receiver.received) == 1


def test_payload_that_is_not_json_is_refused_before_sending(receiver: Receiver) -> None:
    sender = notifier(receiver.url, Sleeps())
    with pytest.raises(InvalidArgument, match="not JSON-able"):
        sender.deliver({"value": float("nan")})
    with pytest.raises(InvalidArgument, match="not JSON-able"):
        sender.deliver({"when": datetime.now(UTC)})
    assert receiver.received == []


# -- validation and redaction ------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"ftp://hooks.example/x?token={TOKEN}", "http or https"),
        (f"file:///etc/passwd?token={TOKEN}", "http or https"),
        (f"hooks.example/x?token={TOKEN}", "http or https"),
        (f"http:///x?token={TOKEN}", "no host"),
        (f"http://hooks.example:99999/x?token={TOKEN}", "not a valid URL"),
        ("", "non-empty"),
    ],
)
def test_bad_url_is_refused_without_showing_the_token(url: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        WebhookNotifier(url)
    assert problem in info.value.message
    assert_no_secrets(info.value.message)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"headers": {"Authorization": "Bearer x\r\nX-Evil: 1"}}, "'Authorization' must be"),
        ({"headers": {"Bad Name": "v"}}, "header name 'Bad Name'"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"backoff_initial": -1}, "backoff_initial"),
        ({"backoff_initial": 5.0, "backoff_max": 1.0}, "backoff_max"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        WebhookNotifier("https://hooks.example/x", **kwargs)
    assert problem in info.value.message
    assert "X-Evil" not in info.value.message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://hooks.example/T0/abc?token={TOKEN}", "https://hooks.example/T0/abc"),
        (f"HTTPS://user:{TOKEN}@Hooks.Example:8443/a#{TOKEN}", "https://hooks.example:8443/a"),
        (f"http://[::1]:8080/hook?t={TOKEN}", "http://[::1]:8080/hook"),
        ("http://hooks.example", "http://hooks.example"),
        ("not a url", "<invalid URL>"),
        (f"http://h:port/?{TOKEN}", "<invalid URL>"),
    ],
)
def test_redacted_url(url: str, expected: str) -> None:
    assert redacted_url(url) == expected


def test_repr_shows_no_secret() -> None:
    sender = WebhookNotifier(
        f"https://u:{TOKEN}@hooks.example/x?token={TOKEN}", headers={"Authorization": AUTH}
    )
    assert_no_secrets(repr(sender))
    assert "https://hooks.example/x" in repr(sender)
    assert "Authorization" in repr(sender)
    assert sender.redacted_url == "https://hooks.example/x"


# -- the alert log and the whole path ----------------------------------------------


def test_alert_events_are_logged_at_warning_when_firing_and_info_when_resolved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=ALERT_LOGGER)
    log_alert_event(PAYLOAD)
    log_alert_event({**PAYLOAD, "state": "resolved", "summary": "RESOLVED it"})
    records = [r for r in caplog.records if r.name == "modelloop.alerts"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, PAYLOAD["summary"]),
        (logging.INFO, "RESOLVED it"),
    ]
    assert getattr(records[0], "alert") == PAYLOAD  # noqa: B009 - set through extra=


def test_alert_fires_once_resolves_and_is_delivered_despite_failures(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ALERT_LOGGER)
    rules = load_rules(
        "rules:\n  - rule: dataset_drift_share > 0.3\n    severity: critical\n"
        "    name: dataset drift\n"
    )
    receiver.script = [Reply(503), Reply(503)]
    sleeps = Sleeps()
    sender = notifier(receiver.url, sleeps)
    open_alerts: dict[str, OpenAlert] = {}
    results: list[DeliveryResult] = []
    next_id = 100
    for i, share in enumerate([0.1, 0.4, 0.5, 0.6, 0.2, 0.1]):
        start, end = i * 60_000, (i + 1) * 60_000
        outcomes = evaluate_rules(rules, {"dataset_drift_share": share, "rows": 100})
        changes = transition(open_alerts, outcomes, end + 1, end)
        for change in changes.fired:
            next_id += 1
            open_alerts[change.key] = OpenAlert(
                change.key,
                change.rule_name,
                change.severity,
                change.fired_ms,
                change.value,
                next_id,
            )
        for change in changes.resolved:
            del open_alerts[change.key]
        for change in changes.events:
            payload = event_payload(
                change,
                monitor="churn",
                deployment="churn-prod",
                alert_id=next_id,
                window=(start, end),
            )
            log_alert_event(payload)
            results.append(sender.deliver(payload))
    assert [(r.ok, r.attempts) for r in results] == [(True, 3), (True, 1)]
    delivered = receiver.bodies()
    assert len(delivered) == 4  # two failed tries of the firing event, then both events
    firing, resolved = delivered[2], delivered[3]
    assert delivered[0] == delivered[1] == firing
    assert (firing["state"], firing["id"], firing["value"], firing["window_end_ms"]) == (
        "firing",
        101,
        0.4,
        120_000,
    )
    assert (resolved["state"], resolved["id"], resolved["value"]) == ("resolved", 101, 0.2)
    assert resolved["fired_at"] == firing["fired_at"] == "1970-01-01T00:02:00.001+00:00"
    assert resolved["resolved_at"] == "1970-01-01T00:05:00.001+00:00"
    levels = [r.levelno for r in caplog.records if r.name == ALERT_LOGGER]
    assert levels == [logging.WARNING, logging.INFO]
    assert_no_secrets(caplog.text)
