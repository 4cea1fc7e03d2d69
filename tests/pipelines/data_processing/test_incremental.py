"""Incremental data_processing equals a full rebuild, for random sequences of extract deliveries.

Each example lands a seeded random sequence of extracts -- in order, out of order, late (a second
file for a month already processed, with re-sent encounters, some moved to another admission
month), duplicated (the same bytes again), corrected (a file re-sent with new content), and a
backfill of an earlier date -- running data_processing incrementally after each delivery. At the
end the same project is rebuilt with ``full_rebuild=true`` from the same bronze: silver, its
quarantine, both gold stores and the quality report must be identical, row for row after sorting,
and so must gold's partition digests, each the digest of the rows a reader of that month sees.
The training trigger's window counts, carried from run to run, must equal a count of gold whole.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pandas as pd
import pytest

from readmit_kedro.io.base import ParquetFileDataset
from readmit_kedro.io.published import (
    PandasPublishedPartitions,
    PandasPublishedTable,
    PublishedFingerprints,
)
from readmit_kedro.pipelines.training.checks import WINDOW_COLUMNS, monthly_window_counts
from tests.support.gold import month_fingerprints

from .conftest import make_rows

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MONTHS = ["1999-01", "1999-02", "1999-03", "1999-04"]
TABLES = {
    "silver_encounters": "data/03_primary/silver_encounters",
    "silver_quarantine": "data/03_primary/silver_quarantine",
    "gold_features": "data/04_feature/gold_features",
    "gold_labels": "data/04_feature/gold_labels",
}
REPORT = "data/08_reporting/data_quality/data_quality_report.json"
WINDOW_COUNTS = "data/04_feature/trigger_window_counts.parquet"


def _month_end(month: str) -> str:
    return f"{month}-28"


class Deliveries:
    """A hospital that sends extracts in a random but seeded way."""

    def __init__(self, project: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.landing = project / "data/01_raw/landing"
        self.landing.mkdir(parents=True, exist_ok=True)
        (self.landing / "_SOURCE.json").write_text(json.dumps({"data_source": "synthetic"}))
        self.next_id = 1000
        self.sent: dict[str, list[dict[str, str]]] = {}  # file stem -> rows

    def _row(self, month: str, encounter_id: int | None = None) -> dict[str, str]:
        rng = self.rng
        if encounter_id is None:
            encounter_id, self.next_id = self.next_id, self.next_id + rng.randint(1, 3)
        row = {
            "encounter_id": str(encounter_id),
            "patient_nbr": str(rng.randint(1, 6)),  # few patients: ordering checks have work
            "admission_date": f"{month}-{rng.randint(1, 28):02d}",
            "readmitted": rng.choice(["NO", ">30", "<30"]),
            "discharge_disposition_id": rng.choice(["1", "1", "1", "11", "6"]),
            "time_in_hospital": str(rng.randint(1, 14)),
            "number_inpatient": str(rng.randint(0, 2)),
        }
        if rng.random() < 0.1:
            row["time_in_hospital"] = "0"  # quarantined
        return row

    def write(self, stem: str, rows: list[dict[str, str]]) -> None:
        self.sent[stem] = rows
        text = make_rows(*rows).to_csv(index=False)
        if self.rng.random() < 0.3:
            text += "9,9,9\n"  # a line with the wrong field count: quarantined as malformed
        path = self.landing / f"{stem}.csv.gz"
        path.write_bytes(gzip.compress(text.encode(), mtime=0))

    def month(self, month: str) -> None:
        self.write(f"diabetic_data_{month}", [self._row(month) for _ in range(5)])

    def late(self, month: str, resent: int = 3) -> None:
        """A second extract for ``month``: new encounters and up to ``resent`` re-sent earlier ones."""
        rows = [self._row(month) for _ in range(2)]
        earlier = [
            r for stem, sent in self.sent.items() for r in sent if stem < f"diabetic_data_{month}~"
        ]
        for old in self.rng.sample(earlier, min(resent, len(earlier))):
            moved = (
                self.rng.choice(MONTHS) if self.rng.random() < 0.5 else old["admission_date"][:7]
            )
            resent = {
                **self._row(moved, int(old["encounter_id"])),
                "patient_nbr": old["patient_nbr"],
            }
            rows.append(resent)
        self.write(f"diabetic_data_{month}_late{self.rng.randint(0, 99)}", rows)

    def correct(self) -> None:
        """Re-send an extract with new content: a value changed, a row withdrawn."""
        stem = self.rng.choice(sorted(self.sent))
        rows = [dict(r) for r in self.sent[stem]]
        rows[0]["num_medications"] = str(self.rng.randint(1, 40))
        if len(rows) > 1:
            rows.pop(self.rng.randrange(len(rows)))
        self.write(stem, rows)

    def duplicate(self) -> None:
        stem = self.rng.choice(sorted(self.sent))
        self.write(stem, self.sent[stem])


def _load(project: Path) -> dict:
    tables = {}
    for name, path in TABLES.items():
        frame = PandasPublishedTable(filepath=str(project / path)).load()
        frame = frame[sorted(frame.columns)]
        tables[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    tables["report"] = json.loads((project / REPORT).read_text())
    for name in ("gold_features", "gold_labels"):
        recorded = PublishedFingerprints(filepath=str(project / TABLES[name])).load()
        read = PandasPublishedTable(filepath=str(project / TABLES[name])).load()
        assert recorded == month_fingerprints(read), name
        tables[f"{name}_fingerprints"] = recorded
    _assert_counts_are_gold_counted_whole(project, tables)
    return tables


def _assert_counts_are_gold_counted_whole(project: Path, tables: dict) -> None:
    months = [
        PandasPublishedPartitions(
            filepath=str(project / TABLES[name]), load_args={"columns": list(columns)}
        ).load()
        for name, columns in zip(("gold_features", "gold_labels"), WINDOW_COLUMNS, strict=True)
    ]
    digests = (tables["gold_features_fingerprints"], tables["gold_labels_fingerprints"])
    whole = monthly_window_counts(*months, *digests, pd.DataFrame())
    carried = ParquetFileDataset(path=str(project / WINDOW_COUNTS)).load()
    pd.testing.assert_frame_equal(carried, whole, check_dtype=False)


def _assert_same(incremental: dict, full: dict) -> None:
    assert incremental["report"] == full["report"]
    for name in ("gold_features", "gold_labels"):
        key = f"{name}_fingerprints"
        assert incremental[key] == full[key], key
    for name in TABLES:
        pd.testing.assert_frame_equal(incremental[name], full[name], check_dtype=False, obj=name)


# An incremental run checks and computes at most driver_max_rows rows on the driver; 0 sends
# every step through Spark. Both engines must give the full rebuild's tables (always Spark's).
ENGINES = {"driver": 50_000, "spark": 0}


def _incremental_runs(run_pipeline, project: Path, engine: str):
    """``run(month)``: data_processing for the month's end, incremental, on ``engine``."""

    def run(month: str) -> None:
        run_pipeline(
            project, "data_processing", run_date=_month_end(month), driver_max_rows=ENGINES[engine]
        )

    return run


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("seed", [2026])
def test_incremental_equals_full_rebuild(kedro_project, run_pipeline, spark, seed, engine):
    hospital = Deliveries(kedro_project, seed)
    rng = hospital.rng
    order = [MONTHS[0], *rng.sample(MONTHS[1:], len(MONTHS) - 1)]  # out of order after the first
    landed: list[str] = []

    run = _incremental_runs(run_pipeline, kedro_project, engine)

    for month in order:
        hospital.month(month)
        landed.append(month)
        action = rng.choice(["late", "correct", "duplicate", "none"])
        if action == "late":
            hospital.late(rng.choice(landed))
        elif action == "correct":
            hospital.correct()
        elif action == "duplicate":
            hospital.duplicate()
        run(max(landed))
    run(rng.choice(MONTHS[:-1]))  # a backfill of an earlier date: later extracts leave silver
    hospital.late(rng.choice(landed))
    hospital.correct()
    run(max(landed))
    incremental = _load(kedro_project)
    assert incremental["report"]["silver_rows"] > 0

    run_pipeline(
        kedro_project, "data_processing", run_date=_month_end(max(landed)), full_rebuild=True
    )
    _assert_same(incremental, _load(kedro_project))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_late_extract_of_new_encounters_keeps_the_month_silver_holds(
    kedro_project, run_pipeline, spark, engine
):
    """Only new encounters for a month already in silver: its other rows come from silver's
    partition alone (no re-sent copy names the month), and must stay."""
    hospital = Deliveries(kedro_project, seed=7)
    run = _incremental_runs(run_pipeline, kedro_project, engine)
    for month in MONTHS[:2]:
        hospital.month(month)
        run(month)
    hospital.late(MONTHS[0], resent=0)
    run(MONTHS[1])
    incremental = _load(kedro_project)
    assert incremental["report"]["silver_rows"] > 0
    run_pipeline(
        kedro_project, "data_processing", run_date=_month_end(MONTHS[1]), full_rebuild=True
    )
    _assert_same(incremental, _load(kedro_project))
