"""The README's Python examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text
    assert "make test" in text


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_python_block_runs(index: int, tmp_path: Path) -> None:
    code = _python_blocks()[index]
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "True" in result.stdout


def test_demo_tracks_and_ranks_models(tmp_path: Path) -> None:
    from rich.console import Console

    from modelloop import Client
    from modelloop.demo import EXPERIMENT, run_demo
    from modelloop.settings import Settings

    settings = Settings(tracking_uri=str(tmp_path / "store"), capture_git=False)
    console = Console(record=True, width=150)
    run_ids = run_demo(settings, n_models=2, console=console)
    assert len(run_ids) == 2
    output = console.export_text()
    assert "tracking server listening on http://127.0.0.1:" in output
    assert "modelloop server --db" in output
    assert EXPERIMENT in output
    assert "roc_auc" in output
    assert "promoted: breast-cancer v1 → champion" in output
    assert "refused: breast-cancer v2 → champion" in output
    # ... then serves the champion, sends it traffic and reads the logged predictions.
    assert "serving breast-cancer@champion on http://127.0.0.1:" in output
    assert "32 requests / 400 rows logged" in output
    assert "399 labels joined back" in output
    # ... and the monitor sees the drift the last 256 rows carry, and alerts on it.
    assert "alert feature drift (critical) firing since window" in output
    assert "breast-cancer-monitor.html" in output
    client = Client(settings=settings)
    runs = client.search_runs(
        [EXPERIMENT], "attributes.run_id IN (" + ", ".join(repr(r) for r in run_ids) + ")"
    )
    assert {r.run_id for r in runs} == set(run_ids)
    for run in runs:
        assert run.status.value == "FINISHED"
        assert 0.9 < run.metrics["accuracy"] <= 1.0
        assert {i.context for i in run.inputs} == {"train", "eval"}
    # The best run's model is the champion; the weaker candidate was refused on record.
    champion = client.get_model_version_by_alias("breast-cancer", "champion")
    assert champion.version == 1
    assert champion.run_id in run_ids
    verdicts = client.backend.list_promotions("breast-cancer")
    assert [(v.version, v.moved) for v in verdicts] == [(1, True), (2, False)]
    evaluations = client.search_runs([EXPERIMENT], "tags.modelloop.run_type = 'evaluation'")
    assert len(evaluations) == 3  # v1 alone, then v2 and the champion on the same data
    windows = client.monitor_windows("breast-cancer-monitor")
    assert [w.rows for w in windows] == [100, 100, 100, 100]
    assert windows[0].metrics["dataset_drift"] == 0.0 and windows[-1].metrics["dataset_drift"] == 1
    assert windows[0].metrics["accuracy"] > 0.9 > windows[-1].metrics["accuracy"]
    firing = {a.rule["name"] for a in client.list_alerts("breast-cancer-monitor", "firing")}
    assert "feature drift" in firing
    client.close()
