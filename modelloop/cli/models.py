"""``modelloop models``: the registry from the command line (list, show, register,
alias, promote, history, lineage, card, policy, evaluate) and ``modelloop datasets``."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from modelloop.cli.context import console, err_console, run_command, state
from modelloop.cli.format import fmt_time, fmt_value
from modelloop.entities import ModelVersion, PromotionRecord
from modelloop.errors import InvalidArgument

__all__ = ["app", "datasets_app"]

app = typer.Typer(
    help="Registered models, versions, aliases and promotion gates.", no_args_is_help=True
)
datasets_app = typer.Typer(help="Registered evaluation datasets.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(_plain(data), default=str))


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="SQL LIKE pattern, e.g. 'churn%'.")] = None,
    max_results: Annotated[
        int, typer.Option("--max", "-n", min=1, help="Show at most this many models.")
    ] = 100,
) -> None:
    """List registered models with their latest version and aliases."""

    def go() -> None:
        page = state(ctx).client().search_registered_models(name, max_results=max_results)
        table = Table("name", "latest", "aliases", "updated", "description")
        for m in page:
            aliases = ", ".join(f"{a}→v{v}" for a, v in m.aliases.items())
            table.add_row(
                m.name,
                str(m.latest_version or ""),
                aliases,
                fmt_time(m.last_updated_time),
                m.description[:60],
            )
        console.print(table, markup=False)

    run_command(go)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    version: Annotated[str | None, typer.Argument(help="A version; all when omitted.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a registered model and its versions, or one version in detail."""

    def go() -> None:
        client = state(ctx).client()
        if version is not None:
            _show_version(client.get_model_version(name, version), as_json)
            return
        model = client.get_registered_model(name)
        versions = list(client.search_model_versions(name, max_results=10_000))
        if as_json:
            _print_json({"model": model, "versions": versions})
            return
        head = Table(show_header=False, title=f"model {model.name}")
        for label, value in (
            ("description", model.description),
            ("intended use", model.intended_use),
            ("limitations", model.limitations),
            ("aliases", ", ".join(f"{a} → v{v}" for a, v in model.aliases.items())),
            ("tags", ", ".join(f"{k}={v}" for k, v in model.tags.items())),
            ("policy", "yes" if model.policy else "none"),
            ("created", fmt_time(model.creation_time)),
        ):
            head.add_row(label, value)
        console.print(head, markup=False)
        table = Table("version", "aliases", "stage", "flavor", "size", "run", "created", "by")
        for mv in versions:
            table.add_row(
                str(mv.version),
                ", ".join(mv.aliases),
                mv.stage,
                mv.flavor or "",
                _size(mv.size_bytes),
                mv.run_id or "",
                fmt_time(mv.creation_time),
                mv.user_id or "",
            )
        console.print(table, markup=False)

    run_command(go)


def _show_version(mv: ModelVersion, as_json: bool) -> None:
    if as_json:
        _print_json(mv)
        return
    table = Table(show_header=False, title=f"{mv.name} version {mv.version}")
    for label, value in (
        ("uri", mv.uri),
        ("source", mv.source),
        ("run", mv.run_id or ""),
        ("aliases", ", ".join(mv.aliases)),
        ("stage", mv.stage),
        ("flavor", mv.flavor or ""),
        ("size", _size(mv.size_bytes)),
        ("description", mv.description),
        ("tags", ", ".join(f"{k}={v}" for k, v in mv.tags.items())),
        ("created", f"{fmt_time(mv.creation_time)} by {mv.user_id or 'unknown'}"),
    ):
        table.add_row(label, value)
    console.print(table, markup=False)
    if mv.signature:
        _print_signature(mv.signature)


def _print_signature(signature: dict[str, Any]) -> None:
    inputs = signature.get("inputs")
    if isinstance(inputs, list):
        table = Table("input column", "type", "required", title="signature")
        for col in inputs:
            table.add_row(
                str(col.get("name", "")),
                str(col.get("type", "")),
                "yes" if col.get("required", True) else "no",
            )
        console.print(table, markup=False)
    elif inputs:
        console.print(f"signature inputs: {json.dumps(inputs)}", markup=False)


@app.command("register")
def register(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="runs:/RUN_ID/PATH of a logged model.")],
    name: str,
    description: Annotated[str, typer.Option(help="The version's description.")] = "",
) -> None:
    """Register a logged model as the next version of NAME."""

    def go() -> None:
        mv = state(ctx).client().register_model(model_uri, name, description=description)
        console.print(f"registered {mv.name} version {mv.version} ({mv.uri})", markup=False)

    run_command(go)


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: str,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS")],
    version: Annotated[str | None, typer.Argument(help="Omit with --delete.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    reason: Annotated[str, typer.Option(help="Why (recorded in the alias history).")] = "",
) -> None:
    """Point ALIAS at VERSION without gates, or --delete it (both recorded).
    `models promote` is the gated way."""

    def go() -> None:
        client = state(ctx).client()
        if delete:
            client.delete_model_alias(name, alias_name, reason)
            console.print(f"removed alias {alias_name} of {name}", markup=False)
            return
        if version is None:
            raise InvalidArgument("give the VERSION to point the alias at (or --delete)")
        event = client.set_model_alias(name, alias_name, version, reason)
        moved = f" (was v{event.previous_version})" if event.previous_version else ""
        console.print(f"{name}@{alias_name} → v{event.version}{moved}", markup=False)

    run_command(go)


@app.command("history")
def history(
    ctx: typer.Context,
    name: str,
    alias_name: Annotated[str | None, typer.Option("--alias", help="Only this alias.")] = None,
    at: Annotated[
        str | None,
        typer.Option(help="Answer which version held --alias at this time (ISO date/time)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every move of the model's aliases: when, from which version to which, who, why."""

    def go() -> None:
        client = state(ctx).client()
        if at is not None:
            if alias_name is None:
                raise InvalidArgument("--at needs --alias")
            try:
                when = datetime.fromisoformat(at)
            except ValueError:
                raise InvalidArgument(f"invalid --at {at!r}: use e.g. 2026-11-24T10:00") from None
            holder = client.alias_at(name, alias_name, when)
            if as_json:
                _print_json({"alias": alias_name, "at": at, "version": holder})
            else:
                shown = f"v{holder}" if holder is not None else "nobody (unset)"
                console.print(f"{name}@{alias_name} at {at}: {shown}", markup=False)
            return
        events = client.alias_history(name, alias_name)
        if as_json:
            _print_json(events)
            return
        table = Table("time", "alias", "from", "to", "by", "reason")
        for e in events:
            table.add_row(
                fmt_time(e.time),
                e.alias,
                f"v{e.previous_version}" if e.previous_version else "—",
                f"v{e.version}" if e.version else "(removed)",
                e.actor,
                e.reason,
            )
        console.print(table, markup=False)

    run_command(go)


@app.command("lineage")
def lineage(ctx: typer.Context, name: str, version: str, as_json: JsonOption = False) -> None:
    """The version's lineage: run, input datasets (by digest), code, environment."""

    def go() -> None:
        graph = state(ctx).client().lineage(name, version)
        if as_json:
            _print_json(graph)
            return
        mv = graph["model_version"]
        root = Tree(f"model {mv['name']} v{mv['version']}  ({mv['flavor'] or 'unknown flavor'})")
        run = graph["run"]
        if run is None:
            root.add(f"source {mv['source']} (no run recorded)")
        else:
            node = root.add(
                f"run {run['run_id']} '{run['name']}' in {run['experiment']} "
                f"({run['status']}, by {run['user']})"
            )
            for d in graph["datasets"]:
                node.add(
                    f"dataset {d['name']} [{d['context']}] digest {d['digest'][:12]} "
                    f"rows {d['rows']}"
                )
            code = graph["code"]
            if code:
                dirty = " + uncommitted diff" if code["git_dirty"] else ""
                node.add(f"code git {code['git_commit'][:12]} ({code['git_branch']}){dirty}")
            env = graph["environment"]
            if env:
                node.add(
                    f"environment {env['python']} on {env['platform']}, "
                    f"{len(env['packages'])} packages"
                )
            if graph["pipeline_run"]:
                node.add(f"pipeline run {graph['pipeline_run']}")
        for e in graph["evaluations"]:
            shown = ", ".join(f"{k}={fmt_value(v)}" for k, v in list(e["metrics"].items())[:4])
            root.add(f"evaluation on {e['dataset'] or 'data'} ({e['digest'][:12]}): {shown}")
        console.print(root, markup=False)

    run_command(go)


@app.command("card")
def card(
    ctx: typer.Context,
    name: str,
    version: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write to.")] = Path(),
) -> None:
    """Write the model card as Markdown and a self-contained HTML page."""

    def go() -> None:
        from modelloop.registry.card import render_html, render_markdown

        content = state(ctx).client().model_card(name, version)
        output.mkdir(parents=True, exist_ok=True)
        stem = output / f"{name}-v{content.version}-card"
        md, html = stem.with_suffix(".md"), stem.with_suffix(".html")
        md.write_text(render_markdown(content), encoding="utf-8")
        html.write_text(render_html(content), encoding="utf-8")
        console.print(f"wrote {md} and {html}", markup=False)

    run_command(go)


@app.command("policy")
def policy(
    ctx: typer.Context,
    name: str,
    file: Annotated[Path | None, typer.Argument(help="A YAML policy to store.")] = None,
) -> None:
    """Show the model's promotion policy, or store FILE as its policy."""

    def go() -> None:
        import yaml

        client = state(ctx).client()
        if file is not None:
            parsed = client.set_policy(name, file)
            console.print(
                f"stored the promotion policy of {name} ({len(parsed.checks)} checks)", markup=False
            )
            return
        stored = client.get_policy(name)
        if stored is None:
            console.print(f"{name} has no promotion policy", markup=False)
        else:
            console.print(yaml.safe_dump(stored.to_dict(), sort_keys=False), markup=False)

    run_command(go)


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: str,
    version: str,
    to: Annotated[str, typer.Option("--to", help="The alias to move.")] = "champion",
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="Use this YAML policy, not the stored one.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Move the alias even if checks fail.")] = False,
    reason: Annotated[str, typer.Option(help="Why (required with --force; recorded).")] = "",
    trusted: Annotated[
        bool, typer.Option(help="Allow loading pickle-based models to re-score them.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Evaluate the promotion policy and move --to onto VERSION only if every check
    passes (or with --force --reason). The verdict is stored either way; exits 1
    when the alias did not move."""

    def go() -> PromotionRecord:
        return (
            state(ctx)
            .client()
            .promote(
                name,
                version,
                to=to,
                policy=policy_file,
                force=force,
                reason=reason,
                trusted=trusted or None,
            )
        )

    record = run_command(go)
    if as_json:
        from modelloop.registry.promotion import verdict_json

        console.print_json(verdict_json(record))
    else:
        _print_verdict(record)
    if not record.moved:
        raise typer.Exit(1)


def _print_verdict(record: PromotionRecord) -> None:
    table = Table(
        "check",
        "result",
        "value",
        "baseline",
        "threshold",
        "detail",
        title=f"{record.name} v{record.version} → {record.alias}",
    )
    for c in record.checks:
        result = "[green]PASS[/green]" if c.get("passed") else "[red]FAIL[/red]"
        table.add_row(
            escape(str(c.get("name", ""))),
            result,
            fmt_value(c.get("value")),
            fmt_value(c.get("baseline")),
            escape(str(c.get("threshold") or "")),
            escape(str(c.get("detail", ""))),
        )
    console.print(table)
    if record.moved and record.forced:
        console.print(
            f"[yellow]forced[/yellow]: {escape(record.alias)} moved to "
            f"v{record.version} despite failing checks ({escape(record.reason)})"
        )
    elif record.moved:
        console.print(
            f"[green]promoted[/green]: {escape(record.name)}@{escape(record.alias)}"
            f" → v{record.version}"
        )
    else:
        failed = ", ".join(str(c.get("name")) for c in record.checks if not c.get("passed"))
        err_console.print(
            f"[red]refused[/red]: {escape(record.alias)} stays where it was; "
            f"failing: {escape(failed)}"
        )


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    model_uri: str,
    target: Annotated[str, typer.Option(help="The label column.")],
    data: Annotated[Path | None, typer.Option(help="A Parquet or CSV file.")] = None,
    dataset: Annotated[str | None, typer.Option(help="A registered evaluation dataset.")] = None,
    model_type: Annotated[str, typer.Option("--type", help="classifier or regressor.")] = (
        "classifier"
    ),
    slices: Annotated[
        list[str] | None, typer.Option("--slice", help="A column or a query, e.g. 'age >= 40'.")
    ] = None,
    trusted: Annotated[bool, typer.Option(help="Allow pickle-based models.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Score a model: standard metrics overall and per slice, latency; logged as an
    evaluation run linked to the version."""

    def go() -> None:
        if (data is None) == (dataset is None):
            raise InvalidArgument("give exactly one of --data FILE or --dataset NAME")
        if model_type not in ("classifier", "regressor"):
            raise InvalidArgument(f"--type must be classifier or regressor, not {model_type!r}")
        source: Any = dataset if dataset is not None else _read_table(data)  # type: ignore[arg-type]
        outcome = (
            state(ctx)
            .client()
            .evaluate(
                model_uri,
                source,
                target,
                model_type=model_type,  # type: ignore[arg-type]
                slices=slices or [],
                trusted=trusted or None,
            )
        )
        if as_json:
            _print_json({"run_id": outcome.run_id, **outcome.result.to_dict()})
            return
        table = Table(
            "metric",
            "overall",
            *outcome.result.slices.keys(),
            title=f"evaluation run {outcome.run_id}",
        )
        for key, value in outcome.result.metrics.items():
            table.add_row(
                key,
                fmt_value(value),
                *(fmt_value(s.get(key)) for s in outcome.result.slices.values()),
            )
        console.print(table, markup=False)

    run_command(go)


def _read_table(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise InvalidArgument(f"{str(path)!r} is not a file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    raise InvalidArgument(f"{str(path)!r}: expected a .parquet or .csv file")


@datasets_app.command("register")
def register_dataset(
    ctx: typer.Context,
    name: str,
    file: Annotated[Path, typer.Argument(help="A Parquet or CSV file.")],
    description: Annotated[str, typer.Option(help="What the dataset is.")] = "",
) -> None:
    """Keep a table as a named evaluation dataset (promotion gates re-score on it)."""

    def go() -> None:
        record = state(ctx).client().register_dataset(name, _read_table(file), description)
        console.print(
            f"registered dataset {record.name}: {record.rows} rows, digest {record.digest[:12]}",
            markup=False,
        )

    run_command(go)


@datasets_app.command("list")
def list_datasets(ctx: typer.Context) -> None:
    """List registered evaluation datasets."""

    def go() -> None:
        table = Table("name", "rows", "columns", "digest", "registered", "by")
        for d in state(ctx).client().backend.list_datasets():
            table.add_row(
                d.name,
                str(d.rows),
                str(len(d.columns)),
                d.digest[:12],
                fmt_time(d.created_time),
                d.actor,
            )
        console.print(table, markup=False)

    run_command(go)
