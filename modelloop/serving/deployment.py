"""Deployment specs and request routing.

A deployment names weighted routes (A/B tests and canaries: each route a model URI
and a share of the traffic), shadow routes (they get a copy of every request; their
answers are logged, never returned), an optional sticky key (requests with the same
key always take the same route), and batching and logging settings. Specs are
validated here; :class:`Router` picks the route of each request.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from modelloop.errors import InvalidArgument

__all__ = ["BatchingSpec", "DeploymentSpec", "LoggingSpec", "RouteSpec", "Router", "ShadowSpec"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
_STICKY_RE = re.compile(r"^(header|input):.+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _route_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(f"invalid route name {value!r}")
    return value


RouteName = Annotated[str, AfterValidator(_route_name)]


class _Target(_Strict):
    name: RouteName
    model: str = Field(min_length=1)


class RouteSpec(_Target):
    """A weighted route: ``weight`` percent of the traffic goes to ``model``."""

    weight: float = Field(ge=0, le=100)


class ShadowSpec(_Target):
    """A shadow route: ``model`` answers a copy of the traffic; answers are only logged."""


class BatchingSpec(_Strict):
    """Adaptive batching per model: off when ``max_batch_size`` <= 1."""

    max_batch_size: int = Field(default=32, ge=0, le=100_000)
    max_wait_ms: float = Field(default=2.0, ge=0, le=10_000)


class LoggingSpec(_Strict):
    """Prediction logging: on or off, and the share of requests kept."""

    enabled: bool = True
    sample_rate: float = Field(default=1.0, ge=0, le=1)


class DeploymentSpec(_Strict):
    """What a deployment serves and how traffic is split."""

    routes: list[RouteSpec] = Field(min_length=1)
    shadows: list[ShadowSpec] = Field(default_factory=list)
    sticky_key: str | None = None
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    logging: LoggingSpec = Field(default_factory=LoggingSpec)

    @field_validator("sticky_key")
    @classmethod
    def _sticky(cls, value: str | None) -> str | None:
        if value is not None and not _STICKY_RE.match(value):
            raise ValueError("sticky_key must be 'header:<name>' or 'input:<column>'")
        return value

    @model_validator(mode="after")
    def _check(self) -> DeploymentSpec:
        names = [r.name for r in self.routes] + [s.name for s in self.shadows]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"route names must be unique: {', '.join(duplicates)}")
        total = sum(r.weight for r in self.routes)
        if abs(total - 100.0) > 1e-6:
            raise ValueError(f"route weights must add up to 100, not {total:g}")
        return self

    @classmethod
    def parse(cls, data: Any) -> DeploymentSpec:
        """Validate a spec dict; InvalidArgument names the first problem."""
        if isinstance(data, DeploymentSpec):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "spec"
            raise InvalidArgument(f"invalid deployment spec: {where}: {err['msg']}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored with each revision."""
        return self.model_dump(mode="json")

    def models(self) -> list[str]:
        """Every model URI the deployment serves (routes, then shadows)."""
        return [r.model for r in self.routes] + [s.model for s in self.shadows]


def simple_spec(
    model: str,
    canaries: list[tuple[str, float]] | None = None,
    shadows: list[str] | None = None,
    sticky_key: str | None = None,
) -> DeploymentSpec:
    """The spec of ``modelloop deploy NAME --model M [--canary M=P%] [--shadow M]``: the
    main route gets what the canaries leave."""
    canaries = canaries or []
    main = 100.0 - sum(p for _, p in canaries)
    if main < 0:
        raise InvalidArgument("canary shares add up to more than 100%")
    routes: list[dict[str, Any]] = [{"name": "main", "model": model, "weight": main}]
    for i, (uri, share) in enumerate(canaries, 1):
        routes.append(
            {"name": "canary" if i == 1 else f"canary-{i}", "model": uri, "weight": share}
        )
    shadow_specs = [
        {"name": "shadow" if i == 1 else f"shadow-{i}", "model": uri}
        for i, uri in enumerate(shadows or [], 1)
    ]
    return DeploymentSpec.parse(
        {"routes": routes, "shadows": shadow_specs, "sticky_key": sticky_key}
    )


def parse_share(text: str) -> tuple[str, float]:
    """``URI=10%`` (or ``URI=10``) as (URI, 10.0)."""
    uri, sep, share = text.rpartition("=")
    if not sep or not uri:
        raise InvalidArgument(
            f"expected MODEL_URI=PERCENT, e.g. models:/churn@challenger=10%, got {text!r}"
        )
    try:
        value = float(share.strip().rstrip("%"))
    except ValueError:
        raise InvalidArgument(f"invalid traffic share {share!r} in {text!r}") from None
    if not 0 < value <= 100:
        raise InvalidArgument(f"traffic share must be in (0, 100], got {value:g}")
    return uri, value


class Router:
    """Picks a weighted route per request: by a stable hash of the sticky key when
    there is one (the same key always lands on the same route while the weights
    stay), else at random."""

    def __init__(self, spec: DeploymentSpec, *, seed: int | None = None) -> None:
        self.spec = spec
        self._rng = random.Random(seed)  # noqa: S311 - traffic splitting, not secrets
        active = [r for r in spec.routes if r.weight > 0]
        self._routes = active
        bounds: list[float] = []
        total = 0.0
        for r in active:
            total += r.weight
            bounds.append(total)
        self._bounds = bounds
        self._total = total

    def _pick(self, point: float) -> RouteSpec:
        for route, bound in zip(self._routes, self._bounds, strict=True):
            if point < bound:
                return route
        return self._routes[-1]

    def choose(self, key: str | None = None) -> RouteSpec:
        """The route for a request (``key``: the sticky key's value, if any)."""
        if key is None:
            return self._pick(self._rng.random() * self._total)
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        unit = int.from_bytes(digest[:8], "big") / 2**64
        return self._pick(unit * self._total)
