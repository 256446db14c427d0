"""Serving a deployment: its routes and shadows as slots of one
:class:`~modelloop.serving.slots.ModelServer`, the router that picks a route per
request, and the follower that switches to a new revision of the spec without a
restart.

Each route and shadow is a slot named ``<deployment>.<route>`` (also addressable on
its own, e.g. ``/v2/models/churn.canary/infer``). Requests for the deployment's own
name go through the router; every shadow then gets a copy, off the response path,
whose answer is only logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from modelloop.serving.deployment import DeploymentSpec, Router
from modelloop.serving.slots import ModelSlot, load_served_model

if TYPE_CHECKING:
    from starlette.requests import Request

    from modelloop.entities import DeploymentRevision
    from modelloop.serving.batching import BatchSettings
    from modelloop.serving.slots import ModelServer, ServedModel
    from modelloop.tracking.client import Client

__all__ = ["DeploymentRouting", "RouteChoice", "load_deployment"]

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RouteChoice:
    """The route a request took: its name, its slot, and the registered model name."""

    route: str
    slot: str
    model_name: str


@dataclasses.dataclass(frozen=True)
class DeploymentRouting:
    """One revision of a deployment as the server applies it (replaced whole when the
    spec changes, so a request sees one revision from start to end)."""

    name: str
    revision: int
    spec: DeploymentSpec
    router: Router
    routes: dict[str, RouteChoice]  # route name -> choice
    shadows: tuple[RouteChoice, ...]

    @property
    def main_slot(self) -> str:
        """The slot whose signature decodes requests (the first route's)."""
        return self.routes[self.spec.routes[0].name].slot

    def choose(self, request: Request, data: Any) -> RouteChoice:
        """The route for a request: by the sticky key (a header, or the first row's
        value of an input column) when the spec has one, else by weight at random."""
        key: str | None = None
        sticky = self.spec.sticky_key
        if sticky is not None:
            kind, _, field = sticky.partition(":")
            key = request.headers.get(field) if kind == "header" else _first_value(data, field)
        return self.routes[self.router.choose(key).name]


def _first_value(data: Any, column: str) -> str | None:
    try:
        value = data[column].iloc[0]
    except (KeyError, IndexError, AttributeError, TypeError):
        return None
    return None if value is None else str(value)


def _slot_name(deployment: str, route: str) -> str:
    return f"{deployment}.{route}"


def _model_name(uri: str) -> str:
    from modelloop.registry.uris import parse_model_uri

    ref = parse_model_uri(uri)
    return ref.name or uri


def load_deployment(
    client: Client,
    revision: DeploymentRevision,
    *,
    trusted: bool | None,
    batching: BatchSettings,
    poll_interval: float,
    loaded: dict[str, ServedModel] | None = None,
) -> tuple[DeploymentRouting, list[ServedModel]]:
    """Load every model of a deployment revision (reusing ``loaded`` slots, by slot
    name and URI, when following a new revision) and the routing over them."""
    spec = DeploymentSpec.parse(revision.spec)
    models: list[ServedModel] = []
    choices: dict[str, RouteChoice] = {}
    shadows: list[RouteChoice] = []
    entries = [(r.name, r.model, False) for r in spec.routes] + [
        (s.name, s.model, True) for s in spec.shadows
    ]
    for route, uri, is_shadow in entries:
        slot = _slot_name(revision.name, route)
        previous = (loaded or {}).get(slot)
        if previous is None or previous.uri != uri:
            previous = load_served_model(
                client, f"{slot}={uri}", trusted=trusted, batching=batching,
                poll_interval=poll_interval,
            )  # fmt: skip
        models.append(previous)
        choice = RouteChoice(route, slot, _model_name(uri))
        if is_shadow:
            shadows.append(choice)
        else:
            choices[route] = choice
    routing = DeploymentRouting(
        revision.name, revision.revision, spec, Router(spec), choices, tuple(shadows)
    )
    return routing, models


class DeploymentFollower:
    """Polls the deployment's live revision and applies a new one: loads its models
    in a thread, adds their slots, then swaps the routing in one assignment."""

    def __init__(
        self,
        client: Client,
        server: ModelServer,
        holder: Any,
        *,
        trusted: bool | None,
        batching: BatchSettings,
        poll_interval: float,
    ) -> None:
        self.client = client
        self.server = server
        self.holder = holder  # has a ``routing`` attribute (the handlers)
        self.trusted = trusted
        self.batching = batching
        self.poll_interval = poll_interval

    async def run(self) -> None:
        """Follow until cancelled."""
        name = self.holder.routing.name
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                live = await asyncio.to_thread(self.client.get_deployment, name)
            except Exception as exc:  # the store is unreachable: keep serving, ask again
                _log.warning("deployment %r: cannot read its spec: %s", name, exc)
                continue
            if live.revision == self.holder.routing.revision:
                continue
            await self._apply(live)

    async def _apply(self, live: DeploymentRevision) -> None:
        current = {
            slot_name: slot.spec
            for slot_name, slot in self.server.slots.items()
            if isinstance(slot, ModelSlot)
        }
        try:
            routing, models = await asyncio.to_thread(
                load_deployment, self.client, live, trusted=self.trusted,
                batching=self.batching, poll_interval=self.poll_interval, loaded=current,
            )  # fmt: skip
        except Exception as exc:
            _log.error("deployment %r revision %d not applied: %s", live.name, live.revision, exc)
            return
        self.server.add_or_replace(models)
        old = self.holder.routing
        self.holder.routing = routing
        _log.info(
            "deployment %r: now serving revision %d (was %d)",
            live.name,
            routing.revision,
            old.revision,
        )
