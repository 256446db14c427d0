"""The models a server serves: one slot per name, swapped atomically on hot reload.

A slot holds the current :class:`SlotState` (version label, loaded model, its
batcher and its OIP metadata). A request reads the state once and uses it to the
end, so a swap never changes the model under a request in flight: the old
state's batcher answers everything already queued, then stops.

A model served through an alias (``models:/churn@champion``) or ``/latest`` is
followed: a background task asks the registry every ``poll_interval`` seconds
which version the alias names and, when it moved, loads and warms that version
in a thread, then swaps the slot on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Protocol

import numpy as np

from modelloop.errors import InvalidArgument
from modelloop.models import LoadedModel
from modelloop.models.signature import ColSpec, TensorSpec
from modelloop.registry.uris import parse_model_uri, resolve_model_uri
from modelloop.serving.batching import Batcher, BatchSettings
from modelloop.serving.errors import ModelNotServed
from modelloop.serving.oip import (
    column_datatype,
    datatype_of,
    dtype_name_datatype,
    input_metadata,
)
from modelloop.tracking.client import Client

__all__ = [
    "ModelServer",
    "ModelSlot",
    "ModelSource",
    "RegistrySource",
    "ServedModel",
    "SlotState",
    "load_served_model",
    "split_model_spec",
]

_log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ModelSource(Protocol):
    """Where a followed model's versions come from (the registry, for an alias)."""

    def current_version(self) -> str:
        """The version label the source names now."""

    def load(self, version: str) -> LoadedModel:
        """Load that version."""


class RegistrySource:
    """Follows ``models:/NAME@ALIAS`` (or ``models:/NAME/latest`` when alias is None)."""

    def __init__(self, client: Client, name: str, alias: str | None, trusted: bool | None) -> None:
        self.client = client
        self.name = name
        self.alias = alias
        self.trusted = trusted

    def current_version(self) -> str:
        """The version the alias (or latest) points at now."""
        backend = self.client.backend
        if self.alias is None:
            return str(backend.get_latest_model_version(self.name).version)
        return str(backend.get_model_version_by_alias(self.name, self.alias).version)

    def load(self, version: str) -> LoadedModel:
        """Load one version by number (not by alias, which may move again meanwhile)."""
        return self.client.load_model(f"models:/{self.name}/{version}", trusted=self.trusted)


@dataclass(frozen=True)
class ServedModel:
    """A model to serve under ``name``: its version label, the loaded model, the URI
    it came from, its batching settings and, to follow an alias, its source."""

    name: str
    version: str
    model: LoadedModel
    uri: str = ""
    batching: BatchSettings = field(default_factory=BatchSettings)
    source: ModelSource | None = None
    poll_interval: float = 2.0


@dataclass(frozen=True)
class SlotState:
    """One version of a slot, as requests see it."""

    version: str
    model: LoadedModel
    batcher: Batcher
    has_proba: bool
    metadata: dict[str, Any]


def _has_proba(model: LoadedModel) -> bool:
    # LoadedModel only says so by raising; its predictor knows without predicting.
    predictor = getattr(model, "_predictor", None)
    return bool(getattr(predictor, "has_proba", False))


def _warm(model: LoadedModel, has_proba: bool) -> tuple[np.ndarray[Any, Any] | None, Any]:
    """One prediction on the stored input example: (predict, proba) outputs or Nones."""
    example = model.input_example()
    if example is None:
        return None, None
    out = model.predict(example)
    proba = model.predict_proba(example) if has_proba else None
    return out, proba


def _output_metadata(
    model: LoadedModel, out: np.ndarray[Any, Any] | None, has_proba: bool, proba: Any
) -> list[dict[str, Any]]:
    outputs = model.signature.outputs if model.signature is not None else None
    if isinstance(outputs, TensorSpec):
        meta = {"datatype": dtype_name_datatype(outputs.dtype), "shape": list(outputs.shape)}
    elif isinstance(outputs, list) and len(outputs) == 1 and isinstance(outputs[0], ColSpec):
        meta = {"datatype": column_datatype(outputs[0].type), "shape": [-1]}
    elif out is not None:
        meta = {"datatype": datatype_of(out.dtype), "shape": [-1, *out.shape[1:]]}
    else:  # nothing tells: say what most tabular models return
        meta = {"datatype": "FP64", "shape": [-1]}
    result = [{"name": "predict", **meta}]
    if has_proba:
        datatype = datatype_of(proba.dtype) if proba is not None else "FP64"
        result.append({"name": "predict_proba", "datatype": datatype, "shape": [-1, -1]})
    return result


class ModelSlot:
    """A served name and its current :class:`SlotState`."""

    def __init__(self, spec: ServedModel, on_batch: Callable[[str, str, int], None] | None) -> None:
        self.spec = spec
        self.name = spec.name
        self.uri = spec.uri
        self.batching = spec.batching
        self.source = spec.source
        self.poll_interval = spec.poll_interval
        self.reloads = 0
        self._on_batch = on_batch
        self.state = self.build_state(spec.version, spec.model)

    def build_state(self, version: str, model: LoadedModel) -> SlotState:
        """Warm ``model`` and wrap it with a batcher and metadata (runs in any thread)."""
        has_proba = _has_proba(model)
        try:
            out, proba = _warm(model, has_proba)
        except Exception as exc:
            raise InvalidArgument(
                f"model {self.name!r} version {version} fails on its own input example: {exc}"
            ) from exc
        hook = self._on_batch
        batcher = Batcher(
            model,
            self.batching,
            name=self.name,
            on_batch=None if hook is None else (lambda n: hook(self.name, version, n)),
        )
        metadata = {
            "name": self.name,
            "versions": [version],
            "platform": f"modelloop-{model.flavor}",
            "inputs": input_metadata(model.signature),
            "outputs": _output_metadata(model, out, has_proba, proba),
            "parameters": {
                "uri": self.uri,
                "batching": self.batching.enabled,
                "max_batch_size": self.batching.max_batch_size,
                "max_wait_ms": self.batching.max_wait_ms,
                "follows_alias": self.source is not None,
            },
        }
        return SlotState(version, model, batcher, has_proba, metadata)

    def describe(self, state: SlotState) -> dict[str, Any]:
        """OIP model metadata of ``state``, its parameters with live batching counters."""
        batcher = state.batcher
        stats = {
            "batches": batcher.batches,
            "batched_requests": batcher.requests,
            "largest_batch": batcher.largest_batch,
            "reloads": self.reloads,
        }
        return {**state.metadata, "parameters": {**state.metadata["parameters"], **stats}}

    def swap(self, state: SlotState) -> None:
        """Serve ``state`` from now on; the old batcher finishes its queue, then stops.

        Called on the event loop, so the stop marker lands after every request
        already queued; a request that read the old state earlier and queues later
        (it was still reading its body) is predicted unbatched on the old model.
        """
        old, self.state = self.state, state
        self.reloads += 1
        old.batcher.close()


class ModelServer:
    """The slots of one server, looked up by name, plus the alias followers."""

    def __init__(
        self,
        models: Sequence[ServedModel],
        *,
        on_batch: Callable[[str, str, int], None] | None = None,
    ) -> None:
        if not models:
            raise InvalidArgument("serve at least one model")
        self.slots: dict[str, ModelSlot] = {}
        for spec in models:
            if spec.name in self.slots:
                raise InvalidArgument(
                    f"two served models are named {spec.name!r}; name one with NAME=URI"
                )
            self.slots[spec.name] = ModelSlot(spec, on_batch)
        self.first = next(iter(self.slots.values()))
        self._on_batch = on_batch
        self._tasks: list[asyncio.Task[None]] = []
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._started = False

    def get(self, name: str, version: str | None = None) -> SlotState:
        """The current state of ``name`` (and ``version``, when given), or ModelNotServed."""
        slot = self.slots.get(name)
        if slot is None:
            raise ModelNotServed(
                f"model '{name}' is not served; served: {', '.join(sorted(self.slots))}"
            )
        state = slot.state
        if version is not None and version != state.version:
            raise ModelNotServed(
                f"model '{name}' version '{version}' is not served "
                f"(serving version '{state.version}')"
            )
        return state

    def start(self) -> None:
        """Start following aliases (idempotent; needs a running event loop)."""
        if self._started:
            return
        self._started = True
        for slot in self.slots.values():
            self._watch(slot)

    def _watch(self, slot: ModelSlot) -> None:
        if slot.source is not None:
            task = asyncio.get_running_loop().create_task(self._follow(slot))
            self._followers[slot.name] = task
            self._tasks.append(task)

    def add_or_replace(self, models: Sequence[ServedModel]) -> None:
        """Serve these models too (a deployment's new revision): a slot whose spec is
        unchanged stays as it is; one of the same name with another spec is replaced
        (its batcher finishes its queue, its alias follower stops). Called on the loop."""
        for spec in models:
            old = self.slots.get(spec.name)
            if old is not None and old.spec is spec:
                continue
            slot = ModelSlot(spec, self._on_batch)
            self.slots[spec.name] = slot
            if old is not None:
                follower = self._followers.pop(old.name, None)
                if follower is not None:
                    follower.cancel()
                old.state.batcher.close()
            if self._started:
                self._watch(slot)

    async def stop(self) -> None:
        """Stop following and let every batcher finish its queue."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for slot in self.slots.values():
            slot.state.batcher.close()

    async def _follow(self, slot: ModelSlot) -> None:
        source = slot.source
        assert source is not None
        rejected: str | None = None  # a version that failed to load or warm: not retried
        while True:
            await asyncio.sleep(slot.poll_interval)
            try:
                version = await asyncio.to_thread(source.current_version)
            except Exception as exc:  # the registry is unreachable: keep serving, ask again
                _log.warning("model %r: cannot ask the registry: %s", slot.name, exc)
                continue
            if version in (slot.state.version, rejected):
                continue

            def build(v: str = version) -> SlotState:
                return slot.build_state(v, source.load(v))

            try:
                state = await asyncio.to_thread(build)
            except Exception as exc:
                rejected = version
                _log.error(
                    "model %r: version %s not served (keeping %s): %s",
                    slot.name,
                    version,
                    slot.state.version,
                    exc,
                )
                continue
            old = slot.state.version
            slot.swap(state)
            _log.info("model %r: now serving version %s (was %s)", slot.name, version, old)


def split_model_spec(spec: str) -> tuple[str | None, str]:
    """``NAME=URI`` -> (NAME, URI); a plain URI -> (None, URI)."""
    name, sep, uri = spec.partition("=")
    if sep and uri and _NAME.match(name) and not name.startswith(("models", "runs")):
        return name, uri
    return None, spec


def load_served_model(
    client: Client,
    spec: str,
    *,
    trusted: bool | None = None,
    batching: BatchSettings | None = None,
    poll_interval: float = 2.0,
) -> ServedModel:
    """Load a model for serving from ``URI`` or ``NAME=URI``.

    The served name is the registry name for ``models:/`` URIs, else the last path
    segment (or the explicit NAME). Aliases and ``/latest`` are followed.
    """
    explicit, uri = split_model_spec(spec)
    ref = parse_model_uri(uri)
    source: ModelSource | None = None
    if ref.name is not None:
        location = resolve_model_uri(client.backend, uri)
        assert location.version is not None
        version = str(location.version.version)
        # Load the resolved version: the alias could move between resolving and loading.
        model = client.load_model(f"models:/{ref.name}/{version}", trusted=trusted)
        if ref.alias is not None or ref.latest:
            source = RegistrySource(client, ref.name, ref.alias, trusted)
        name = explicit or ref.name
    else:
        model = client.load_model(uri, trusted=trusted)
        if ref.run_id is not None:
            version, path = ref.run_id, PurePosixPath(ref.path or "model").name
        else:
            assert ref.local_path is not None
            version, path = "1", ref.local_path.resolve().name
        name = explicit or path
    if not _NAME.match(name):
        raise InvalidArgument(f"cannot serve under the name {name!r}: give one with NAME=URI")
    return ServedModel(
        name,
        version,
        model,
        uri=uri,
        batching=batching or BatchSettings(),
        source=source,
        poll_interval=poll_interval,
    )
