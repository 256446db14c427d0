"""Model cards: what a model version is, where it came from and how it was judged.

:class:`ModelCard` holds the facts (gathered from the registry and the tracking
store by the client); :func:`render_markdown` and :func:`render_html` turn them
into a document with the same sections: overview, intended use & limitations,
lineage, training data, evaluation (overall and per slice), gate verdicts,
signature, environment and alias history. Missing facts render as "not recorded"
or "—", never as an error.

Both renderers lay out one intermediate structure (sections of text and tables)
with the Jinja2 templates in ``templates/``. The HTML page is self-contained
(inline CSS, no script, no external resource) and all user text is escaped; the
Markdown escapes ``<``, ``>`` and table pipes so that it is safe to render too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from modelloop.registry.gate_checks import format_size

__all__ = ["NOT_RECORDED", "ModelCard", "render_html", "render_markdown"]

NOT_RECORDED = "not recorded"
_DASH = "—"
_TEMPLATES = Path(__file__).parent / "templates"


@dataclasses.dataclass
class ModelCard:
    """The content of a model card (every field but the name and version is optional).

    ``lineage`` holds ``run_id``, ``experiment``, ``git_commit``, ``git_dirty``,
    ``datasets`` (dicts with ``name``, ``digest``, ``role``, ``rows``) and
    ``environment`` (``python``, package versions, ...). ``evaluations`` are dicts
    with ``dataset``, ``digest``, ``metrics``, ``slices`` (name -> metrics) and
    ``run_id``; ``verdicts`` dicts with ``alias``, ``passed``, ``forced``, ``reason``,
    ``time``, ``user`` and ``checks`` (:class:`~modelloop.registry.gates.CheckResult`
    dicts); ``alias_history`` dicts with ``alias``, ``version``, ``previous_version``,
    ``time``, ``user`` and ``reason``. Times are ISO strings or epoch milliseconds.
    """

    name: str
    version: str | int
    description: str = ""
    intended_use: str = ""
    limitations: str = ""
    created_at: str | int | None = None
    created_by: str = ""
    aliases: list[str] = dataclasses.field(default_factory=list)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    lineage: dict[str, Any] = dataclasses.field(default_factory=dict)
    training_params: dict[str, str] = dataclasses.field(default_factory=dict)
    training_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    evaluations: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    verdicts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    signature: dict[str, Any] | None = None
    requirements: list[str] = dataclasses.field(default_factory=list)
    alias_history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    size_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The card's fields as a JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """The inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# --- the intermediate structure both formats render --------------------------------------


@dataclasses.dataclass
class _Block:
    """A paragraph (``text``) or a table (``headers`` + ``rows``) under an optional title."""

    title: str = ""
    text: str | None = None
    headers: list[str] = dataclasses.field(default_factory=list)
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    note: str = ""

    @property
    def is_table(self) -> bool:
        return self.text is None


@dataclasses.dataclass
class _Section:
    title: str
    anchor: str
    blocks: list[_Block]


def _value(value: Any) -> str:
    """A cell value: numbers to 6 significant digits, missing values as a dash."""
    if value is None or value == "":
        return _DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _DASH if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) or _DASH
    return str(value)


def _time(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        stamp = dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")
    return _value(value)


def _text(title: str, text: Any, empty: str = NOT_RECORDED) -> _Block:
    return _Block(title=title, text=str(text).strip() if text else empty)


def _table(title: str, headers: list[str], rows: Iterable[Iterable[Any]], note: str = "") -> _Block:
    return _Block(title, None, headers, [[_value(c) for c in row] for row in rows], note)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _records(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _metric_table(title: str, metrics: Any) -> _Block:
    return _table(title, ["Metric", "Value"], sorted(_mapping(metrics).items()))


def _overview(card: ModelCard) -> _Section:
    facts = [
        ("Name", card.name),
        ("Version", card.version),
        ("Aliases", sorted(card.aliases)),
        ("Created", _time(card.created_at)),
        ("Created by", card.created_by),
        ("Size", None if card.size_bytes is None else format_size(card.size_bytes)),
    ]
    return _Section(
        "Overview",
        "overview",
        [
            _text("", card.description, "No description."),
            _table("", ["Field", "Value"], facts),
            _table("Tags", ["Tag", "Value"], sorted(_mapping(card.tags).items())),
        ],
    )


def _lineage(card: ModelCard) -> list[_Section]:
    lin = _mapping(card.lineage)
    commit = lin.get("git_commit")
    if commit and lin.get("git_dirty"):
        commit = f"{commit} (uncommitted changes)"
    facts = [
        ("Run", lin.get("run_id")),
        ("Experiment", lin.get("experiment")),
        ("Git commit", commit),
    ]
    params = _mapping(card.training_params)
    datasets = [
        [d.get("name"), d.get("role"), d.get("rows"), d.get("digest")]
        for d in _records(lin.get("datasets"))
    ]
    return [
        _Section("Lineage", "lineage", [_table("", ["Field", "Value"], facts)]),
        _Section(
            "Training data",
            "training-data",
            [
                _table("Datasets", ["Dataset", "Role", "Rows", "Digest"], datasets),
                _table("Parameters", ["Parameter", "Value"], sorted(params.items())),
                _metric_table("Training metrics", card.training_metrics),
            ],
        ),
    ]


def _evaluations(card: ModelCard) -> _Section:
    blocks: list[_Block] = []
    for ev in _records(card.evaluations):
        title = f"Dataset {_value(ev.get('dataset'))}"
        note = f"digest {_value(ev.get('digest'))}, run {_value(ev.get('run_id'))}"
        overall = _metric_table(f"{title}: overall", ev.get("metrics"))
        overall.note = note
        slices = _mapping(ev.get("slices"))
        names: list[str] = []
        for metrics in slices.values():
            names += [m for m in _mapping(metrics) if m not in names]
        rows = [[s, *(_mapping(m).get(n) for n in names)] for s, m in slices.items()]
        blocks += [overall, _table(f"{title}: per slice", ["Slice", *names], rows)]
    if not blocks:
        blocks.append(_text("", None))
    return _Section("Evaluation", "evaluation", blocks)


def _verdicts(card: ModelCard) -> _Section:
    blocks: list[_Block] = []
    headers = ["Result", "Check", "Value", "Champion", "Threshold", "Detail"]
    for v in _records(card.verdicts):
        outcome = "PASSED" if v.get("passed") else "FAILED"
        if v.get("forced"):
            outcome += ", forced"
        title = f"Promotion to '{_value(v.get('alias'))}': {outcome}"
        note = f"{_time(v.get('time'))} by {_value(v.get('user'))}"
        if v.get("reason"):
            note += f"; reason: {v['reason']}"
        rows = [
            [
                "PASS" if c.get("passed") else "FAIL",
                c.get("name") or c.get("kind"),
                c.get("value"),
                c.get("baseline"),
                c.get("threshold"),
                c.get("detail"),
            ]
            for c in _records(v.get("checks"))
        ]
        blocks.append(_table(title, headers, rows, note))
    return _Section("Gate verdicts", "gate-verdicts", blocks or [_text("", None)])


def _signature(card: ModelCard) -> _Section:
    sig = card.signature
    if not isinstance(sig, Mapping) or not sig:
        return _Section("Signature", "signature", [_text("", None)])
    blocks = []
    for part in ("inputs", "outputs"):
        spec = sig.get(part)
        title = part.capitalize()
        if isinstance(spec, Mapping):  # a tensor
            tensor = [[spec.get("dtype"), str(spec.get("shape", "—"))]]
            blocks.append(_table(title, ["Tensor dtype", "Shape"], tensor))
        else:
            rows = [[c.get("name"), c.get("type"), c.get("required", True)] for c in _records(spec)]
            blocks.append(_table(title, ["Column", "Type", "Required"], rows))
    return _Section("Signature", "signature", blocks)


def _environment(card: ModelCard) -> _Section:
    env = _mapping(_mapping(card.lineage).get("environment"))
    return _Section(
        "Environment",
        "environment",
        [
            _table("", ["Component", "Version"], sorted(env.items())),
            _table("Requirements", ["Requirement"], [[r] for r in card.requirements]),
        ],
    )


def _alias_history(card: ModelCard) -> _Section:
    rows = [
        [
            _time(e.get("time")),
            e.get("alias"),
            e.get("version"),
            e.get("previous_version"),
            e.get("user") or e.get("actor"),
            e.get("reason"),
        ]
        for e in _records(card.alias_history)
    ]
    headers = ["Time", "Alias", "Version", "Previous version", "User", "Reason"]
    return _Section("Alias history", "alias-history", [_table("", headers, rows)])


def _sections(card: ModelCard) -> list[_Section]:
    return [
        _overview(card),
        _Section(
            "Intended use & limitations",
            "intended-use",
            [
                _text("Intended use", card.intended_use),
                _text("Limitations", card.limitations),
            ],
        ),
        *_lineage(card),
        _evaluations(card),
        _verdicts(card),
        _signature(card),
        _environment(card),
        _alias_history(card),
    ]


# --- rendering -----------------------------------------------------------------------------


def _md_escape(value: Any) -> str:
    """Text safe in Markdown: no raw HTML (``<``/``>`` become entities)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md_cell(value: Any) -> str:
    """A Markdown table cell: escaped, pipes escaped, on one line."""
    text = _md_escape(value).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.split()) or _DASH


@cache
def _jinja() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        # HTML templates autoescape; the Markdown one escapes with its own filters.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_escape
    env.filters["md_cell"] = _md_cell
    return env


def _title(card: ModelCard) -> str:
    return f"Model card: {card.name} version {card.version}"


def render_markdown(card: ModelCard) -> str:
    """The model card as a Markdown document."""
    template = _jinja().get_template("model_card.md.j2")
    return template.render(title=_title(card), sections=_sections(card), empty=NOT_RECORDED)


def render_html(card: ModelCard) -> str:
    """The model card as a self-contained HTML page (inline CSS; no script or external
    resource; all user text escaped)."""
    template = _jinja().get_template("model_card.html.j2")
    return template.render(title=_title(card), sections=_sections(card), empty=NOT_RECORDED)
