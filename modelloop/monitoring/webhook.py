"""Delivering alert events: an HTTP POST of the JSON payload to a webhook, retried
with exponential backoff, and a line in the ``modelloop.alerts`` log.

Webhook URLs are secrets more often than not (``?token=...``, credentials in the
userinfo) and so are header values (``Authorization``): nothing here logs, repeats
in an error or shows in a ``repr`` more of the URL than :func:`redacted_url`
keeps, nor any header value.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from modelloop.errors import InvalidArgument
from modelloop.monitoring.alerting import event_message

__all__ = [
    "ALERT_LOGGER",
    "DeliveryResult",
    "WebhookNotifier",
    "check_url",
    "log_alert_event",
    "redacted_url",
]

#: The logger every alert event goes to (WARNING when firing, INFO when resolved).
ALERT_LOGGER = "modelloop.alerts"

_log = logging.getLogger(__name__)

# 408 and 429 say "try later"; every other 4xx means the request itself is wrong
# and sending it again cannot help.
_RETRY_STATUSES = frozenset({408, 429})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_INVALID_URL = "<invalid URL>"


def redacted_url(url: str) -> str:
    """``url`` reduced to scheme, host, port and path: no credentials, query or
    fragment, which is where webhook tokens usually sit. Never raises."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return _INVALID_URL
    if not parts.scheme or not host:
        return _INVALID_URL
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path}"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How a delivery went: ``ok`` once a 2xx answered; ``status`` is the last HTTP
    status received (``None`` when no answer came); ``error`` says why it failed
    (secrets removed)."""

    ok: bool
    attempts: int
    status: int | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for storing the delivery status with the alert event."""
        return asdict(self)


def _positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidArgument(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def check_url(url: Any) -> str:
    """``url`` if it is a valid http(s) URL with a host (errors never show its secrets)."""
    if not isinstance(url, str) or not url:
        raise InvalidArgument("webhook URL must be a non-empty string")
    shown = redacted_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what raises on a bad one
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise InvalidArgument(f"webhook URL {shown} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidArgument(
            f"webhook URL must be http or https, got scheme {parts.scheme or '(none)'!r}"
        )
    if not parts.hostname:
        raise InvalidArgument(f"webhook URL {shown} has no host")
    return url


def _check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidArgument("webhook headers must be a mapping of names to values")
    out: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidArgument(f"webhook header name {name!r} is not a valid HTTP header name")
        # The value is likely a secret: name the header, never show the value.
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise InvalidArgument(f"webhook header {name!r} must be a one-line string")
        out[name] = value
    return out


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class WebhookNotifier:
    """POSTs alert payloads as JSON to one webhook URL.

    A delivery is retried on connection errors, timeouts, 5xx, 408 and 429, up to
    ``max_attempts`` attempts in all; other answers end it. Between attempts it
    sleeps (through ``sleep``, which tests replace) an exponentially growing delay:
    attempt *n* waits between half and all of
    ``min(backoff_max, backoff_initial * 2 ** (n - 1))`` seconds (the random part
    keeps many monitors from retrying in step), or what a ``Retry-After`` header
    asks, capped by ``backoff_max``. Redirects are not followed: they would carry
    the URL's token to another address.

    ``transport`` is an ``httpx`` transport to send through (default: a fresh
    ``httpx.HTTPTransport`` per delivery, through ``proxy`` when given; proxy
    environment variables are not read).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        max_attempts: int = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
        proxy: str | None = None,
    ) -> None:
        self._url = check_url(url)
        self._headers = _check_headers(headers)
        self._timeout = _positive(timeout, "timeout")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidArgument(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
        self._max_attempts = max_attempts
        self._backoff_initial = _positive(backoff_initial, "backoff_initial", allow_zero=True)
        self._backoff_max = _positive(backoff_max, "backoff_max", allow_zero=True)
        if self._backoff_max < self._backoff_initial:
            raise InvalidArgument(
                f"backoff_max ({backoff_max!r}) must be >= backoff_initial ({backoff_initial!r})"
            )
        if not callable(sleep):
            raise InvalidArgument("sleep must be callable")
        self._sleep = sleep
        self._transport = transport
        if proxy is not None:
            check_url(proxy)
        self._proxy = proxy
        # Jitter needs no cryptographic quality; a seeded Random makes tests repeatable.
        self._rng = rng if rng is not None else random.Random()  # noqa: S311

    @property
    def redacted_url(self) -> str:
        """The URL without credentials, query or fragment (safe to log or show)."""
        return redacted_url(self._url)

    def __repr__(self) -> str:
        return (
            f"WebhookNotifier({self.redacted_url!r}, headers={sorted(self._headers)!r}, "
            f"max_attempts={self._max_attempts})"
        )

    def backoff(self, attempt: int) -> float:
        """The delay after failed attempt number ``attempt`` (1-based), jitter included."""
        base = min(self._backoff_max, self._backoff_initial * 2.0 ** (attempt - 1))
        return base / 2 + self._rng.uniform(0, base / 2)

    def _scrub(self, text: str) -> str:
        # httpx errors rarely quote the URL, but some do (and may quote headers).
        secrets = [self._url, *self._headers.values()]
        parts = urlsplit(self._url)
        secrets += [s for s in (parts.query, parts.fragment, parts.password, parts.username) if s]
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, "***")
        return text

    def _post(
        self, transport: httpx.BaseTransport, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, str, str | None]:
        request = httpx.Request(
            "POST",
            self._url,
            content=body,
            headers=headers,
            extensions={"timeout": httpx.Timeout(self._timeout).as_dict()},
        )
        response = transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response.status_code, response.reason_phrase, response.headers.get("Retry-After")

    def deliver(self, payload: Mapping[str, Any]) -> DeliveryResult:
        """POST ``payload`` as JSON, retrying as the class says. Never raises on a
        failed delivery (the result tells); a payload that is not JSON-able (NaN,
        objects) raises :class:`InvalidArgument` before anything is sent."""
        try:
            body = json.dumps(dict(payload), allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"alert payload is not JSON-able: {exc}") from None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "modelloop-alerts",
            **self._headers,
        }
        status: int | None = None
        error: str | None = None
        attempt = 0
        # The transport is driven directly, not through httpx.Client: the client
        # logs every request's full URL (token included) at INFO on "httpx".
        own_transport = self._transport is None
        transport = self._transport or httpx.HTTPTransport(proxy=self._proxy)
        try:
            while True:
                attempt += 1
                retry_after: float | None = None
                try:
                    status, reason, retry_after_header = self._post(transport, body, headers)
                except httpx.TimeoutException as exc:
                    status, error, retry = None, f"timed out ({type(exc).__name__})", True
                except httpx.TransportError as exc:
                    status, error, retry = None, f"{type(exc).__name__}: {exc}", True
                else:
                    if 200 <= status < 300:
                        _log.debug(
                            "webhook %s accepted the event (HTTP %d, attempt %d)",
                            self.redacted_url,
                            status,
                            attempt,
                        )
                        return DeliveryResult(True, attempt, status, None)
                    error = f"HTTP {status} {reason}".rstrip()
                    retry = status >= 500 or status in _RETRY_STATUSES
                    if retry:
                        retry_after = _retry_after(retry_after_header, datetime.now(UTC))
                error = self._scrub(error)
                if not retry or attempt >= self._max_attempts:
                    break
                delay = self.backoff(attempt)
                if retry_after is not None:
                    delay = min(retry_after, self._backoff_max)
                _log.warning(
                    "webhook %s: attempt %d/%d failed (%s); retrying in %.2f s",
                    self.redacted_url,
                    attempt,
                    self._max_attempts,
                    error,
                    delay,
                )
                self._sleep(delay)
        finally:
            if own_transport:
                transport.close()
        _log.error(
            "webhook %s: giving up after %d attempt(s): %s", self.redacted_url, attempt, error
        )
        return DeliveryResult(False, attempt, status, error)


def log_alert_event(payload: Mapping[str, Any], *, logger: logging.Logger | None = None) -> None:
    """Log one alert event (a payload from ``event_payload``) to ``modelloop.alerts``:
    WARNING when it fires, INFO when it resolves. The payload rides along as the
    record's ``alert`` attribute for structured handlers."""
    target = logger if logger is not None else logging.getLogger(ALERT_LOGGER)
    level = logging.WARNING if payload.get("state") == "firing" else logging.INFO
    message = payload.get("summary") or event_message(payload)
    target.log(level, "%s", message, extra={"alert": dict(payload)})
