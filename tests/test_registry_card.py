"""Model card rendering: every section, escaping, and missing facts."""

from __future__ import annotations

import re

import pytest

from modelloop.registry.card import ModelCard, render_html, render_markdown
from modelloop.registry.gates import CheckResult

SECTIONS = [
    "Overview",
    "Intended use & limitations",
    "Lineage",
    "Training data",
    "Evaluation",
    "Gate verdicts",
    "Signature",
    "Environment",
    "Alias history",
]


def _card() -> ModelCard:
    checks = [
        CheckResult("accuracy >= 0.8", "metric_threshold", True, 0.91, None, 0.8, "ok").to_dict(),
        CheckResult(
            "f1 beats champion by >= 0.01", "beats_champion", False, 0.70, 0.72, 0.01, "worse"
        ).to_dict(),
    ]
    return ModelCard(
        name="churn-model",
        version="7",
        description="Predicts churn for <b>all</b> customers.",
        intended_use="Weekly retention campaigns.",
        limitations="Not calibrated for new markets.",
        created_at=1_767_225_600_000,  # 2026-01-01T00:00:00Z in epoch milliseconds
        created_by="alice",
        aliases=["champion", "staging"],
        tags={"team": "growth", "pii": "none"},
        lineage={
            "run_id": "run-abc123",
            "experiment": "churn-exp",
            "git_commit": "0badc0ffee",
            "git_dirty": True,
            "datasets": [
                {"name": "train-2026-10", "digest": "sha-train", "role": "training", "rows": 8000}
            ],
            "environment": {"python": "3.11.9", "scikit-learn": "1.9.1"},
        },
        training_params={"C": "0.5", "penalty": "l2"},
        training_metrics={"train_accuracy": 0.934567},
        evaluations=[
            {
                "dataset": "eval-2026-11",
                "digest": "sha-eval",
                "metrics": {"accuracy": 0.91, "roc_auc": None},
                "slices": {
                    "region=north": {"accuracy": 0.93, "f1": 0.88},
                    "tenure >= 12": {"accuracy": 0.87},
                },
                "run_id": "run-eval-1",
            }
        ],
        verdicts=[
            {
                "alias": "champion",
                "passed": False,
                "forced": True,
                "reason": "hotfix approved by bob",
                "time": "2026-11-20T10:00:00Z",
                "user": "alice",
                "checks": checks,
            }
        ],
        signature={
            "inputs": [
                {"name": "age", "type": "long", "required": True},
                {"name": "region", "type": "string", "required": False},
            ],
            "outputs": {"dtype": "float64", "shape": [-1, 2]},
        },
        requirements=["scikit-learn==1.9.1", "pandas==3.1.1"],
        alias_history=[
            {
                "alias": "champion",
                "version": 7,
                "previous_version": 6,
                "time": "2026-11-20T10:00:01Z",
                "user": "alice",
                "reason": "quarterly refresh",
            }
        ],
        size_bytes=12_345_678,
    )


def test_markdown_has_every_section_and_value() -> None:
    text = render_markdown(_card())
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings == SECTIONS
    assert text.startswith("# Model card: churn-model version 7\n")
    for value in [
        "Weekly retention campaigns.",
        "Not calibrated for new markets.",
        "2026-01-01T00:00:00Z",
        "alice",
        "champion, staging",
        "| team | growth |",
        "12.3 MB",
        "run-abc123",
        "churn-exp",
        "0badc0ffee (uncommitted changes)",
        "| train-2026-10 | training | 8000 | sha-train |",
        "| C | 0.5 |",
        "| train_accuracy | 0.934567 |",
        "eval-2026-11",
        "sha-eval",
        "| accuracy | 0.91 |",
        "| roc_auc | — |",
        "| Slice | accuracy | f1 |",
        "| region=north | 0.93 | 0.88 |",
        "| tenure &gt;= 12 | 0.87 | — |",
        "FAILED, forced",
        "hotfix approved by bob",
        "| PASS | accuracy &gt;= 0.8 | 0.91 | — | 0.8 | ok |",
        "| FAIL | f1 beats champion by &gt;= 0.01 | 0.7 | 0.72 | 0.01 | worse |",
        "| age | long | yes |",
        "| region | string | no |",
        "| float64 | [-1, 2] |",
        "| python | 3.11.9 |",
        "| scikit-learn==1.9.1 |",
        "| 2026-11-20T10:00:01Z | champion | 7 | 6 | alice | quarterly refresh |",
    ]:
        assert value in text, value
    # user HTML does not survive as markup
    assert "<b>" not in text and "&lt;b&gt;all&lt;/b&gt;" in text


def test_markdown_table_cells_escape_pipes_and_newlines() -> None:
    card = ModelCard("m", 1, tags={"note": "a | b\nc"})
    text = render_markdown(card)
    assert "| note | a \\| b c |" in text


@pytest.mark.parametrize("render", [render_markdown, render_html])
def test_empty_card_renders_placeholders(render: object) -> None:
    text = render(ModelCard(name="bare", version=1))  # type: ignore[operator]
    assert "not recorded" in text
    assert "—" in text
    for section in SECTIONS:
        assert section.replace("&", "&amp;" if render is render_html else "&") in text


def test_malformed_facts_do_not_crash() -> None:
    card = ModelCard(
        name="odd",
        version="1",
        lineage={"datasets": "not-a-list", "environment": None},
        evaluations=[{"metrics": None, "slices": {"s": None}}, "junk"],  # type: ignore[list-item]
        verdicts=[{"checks": None}],
        signature={"inputs": None},
        alias_history=[{}],
        created_at="yesterday",
    )
    for render in (render_markdown, render_html):
        text = render(card)
        assert "yesterday" in text and "FAILED" in text


def test_html_is_self_contained_and_escapes_user_text() -> None:
    card = _card()
    card.description = 'Evil <script>alert("x")</script> & "quotes"'
    card.tags["link"] = '<img src="https://evil.example/x.png">'
    card.lineage["environment"]["<script>"] = "1"
    html = render_html(card)
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "<style>" in html
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quotes&#34;" in html
    assert "&lt;img src=&#34;https://evil.example/x.png&#34;&gt;" in html
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, flags=re.I)
    assert external == []
    assert "@import" not in html and "url(" not in html
    # every section is there, with its values
    for section in SECTIONS:
        assert f"<h2>{section.replace('&', '&amp;')}</h2>" in html
    assert '<td class="FAIL">FAIL</td>' in html and '<td class="PASS">PASS</td>' in html
    assert "<td>region=north</td><td>0.93</td><td>0.88</td>" in html
    assert "quarterly refresh" in html and "sha-eval" in html


def test_card_dict_round_trip() -> None:
    card = _card()
    assert ModelCard.from_dict({**card.to_dict(), "unknown": 1}) == card
