"""Evidently's side of ``drift.py``: runs in the Evidently venv, one process per run.

    python _evidently_side.py --reference R.parquet --current C.parquet \
        --types types.json --out result.json

Times importing Evidently, reading both Parquet files with pandas, and running
``Report([DataDriftPreset()])``; records each column's method, value, threshold and
verdict from the snapshot, and this process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def _peak_mib() -> float:
    """This process's peak RSS in MiB.

    Linux's VmHWM, which starts afresh at exec; ``ru_maxrss`` would also count the
    parent's pages at fork time (the driver holds the generated data then).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# Evidently's method labels (StatTest.display_name) to modelloop's stattest names.
_METHODS = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "PSI": "psi",
    "Kullback-Leibler divergence": "kl_div",
    "Hellinger distance": "hellinger",
    "Anderson-Darling": "anderson",
    "Cramer-von Mises": "cramer_von_mises",
}


def _columns(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-column drift from the snapshot's ValueDrift metrics."""
    columns: dict[str, dict[str, Any]] = {}
    for metric in snapshot["metrics"]:
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith(":ValueDrift"):
            continue
        method = str(config["method"])
        value = float(metric["value"])
        threshold = float(config["threshold"])
        p_value = "p_value" in method
        columns[str(config["column"])] = {
            "method": method,
            "stattest": _METHODS.get(method, method),
            "value": value,
            "threshold": threshold,
            "drifted": value < threshold if p_value else value >= threshold,
        }
    return columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--current", required=True)
    parser.add_argument("--types", required=True, help="JSON {numeric: [...], categorical: [...]}")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    types = json.loads(Path(args.types).read_text())

    start = time.perf_counter()
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    imported = time.perf_counter()
    reference = pd.read_parquet(args.reference)
    current = pd.read_parquet(args.current)
    read = time.perf_counter()
    definition = DataDefinition(
        numerical_columns=types["numeric"], categorical_columns=types["categorical"]
    )
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    as_dict = snapshot.dict()
    done = time.perf_counter()
    import evidently

    result = {
        "tool": f"evidently {evidently.__version__}",
        "import_s": imported - start,
        "read_s": read - imported,
        "compute_s": done - read,
        "seconds": done - imported,
        "peak_mib": _peak_mib(),
        "columns": _columns(as_dict),
    }
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
