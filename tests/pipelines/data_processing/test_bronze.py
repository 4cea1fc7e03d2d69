"""Bronze: which extracts are copied, and which are refused before anything is written."""

from __future__ import annotations

import pytest

from readmit_kedro.pipelines.data_processing.bronze import ingest_extracts
from readmit_kedro.run_context import ConfigError

from .conftest import hashes, ingest, make_extract, make_landing, make_rows

SOURCE = {"data_source": "synthetic"}


def test_ingest_only_new_extracts_up_to_run_date():
    landing = make_landing(
        **{
            "diabetic_data_1999-01": make_rows({}),
            "diabetic_data_1999-02": make_rows({"encounter_id": "2"}, {"encounter_id": "3"}),
            "diabetic_data_1999-03": make_rows({"encounter_id": "4"}),
        }
    )
    bronze, summary = ingest(landing, "1999-02-28", "diabetic_data_1999-01")
    assert list(bronze) == ["diabetic_data_1999-02"]
    assert summary["new_rows"] == 2 and summary["extracts_in_scope"] == 2
    frame = bronze["diabetic_data_1999-02"]
    assert frame["_source_file"].unique().tolist() == ["diabetic_data_1999-02"]
    assert frame["_extract_month"].unique().tolist() == ["1999-02"]
    assert len(frame["_source_sha256"].iloc[0]) == 64
    assert frame["_data_source"].unique().tolist() == ["synthetic"]


def test_reingesting_is_a_noop():
    landing = make_landing(**{"diabetic_data_1999-01": make_rows({})})
    bronze, summary = ingest(landing, "1999-01-31", "diabetic_data_1999-01")
    assert bronze == {} and summary["new_rows"] == 0


def test_bronze_copies_are_made_one_at_a_time_when_saved():
    """A first run lands the whole history: holding every extract's rows as Python strings at
    once took gigabytes at 1M rows. Each copy is a writer that reads its extract when called."""
    loads = []
    extracts = {
        f"diabetic_data_1999-0{m}": make_extract(
            f"diabetic_data_1999-0{m}", make_rows({"encounter_id": str(m)})
        )
        for m in (1, 2, 3)
    }
    landing = {n: (lambda n=n: loads.append(n) or extracts[n]) for n in extracts}
    bronze, summary = ingest_extracts(landing, hashes(landing), {}, SOURCE, "1999-03-31")
    assert summary["new_rows"] == 3 and all(callable(write) for write in bronze.values())
    loads.clear()
    assert bronze["diabetic_data_1999-02"]()["encounter_id"].tolist() == ["2"]
    assert loads == ["diabetic_data_1999-02"]


def test_an_extract_that_changes_after_its_check_is_not_copied():
    name = "diabetic_data_1999-01"
    checked, resent = (make_extract(name, make_rows({"num_medications": n})) for n in ("1", "2"))
    deliveries = iter([checked, resent])
    bronze, _ = ingest_extracts(
        {name: lambda: next(deliveries)}, {name: checked.sha256}, {}, SOURCE, "1999-01-31"
    )
    with pytest.raises(ValueError, match=f"{name} changed while this run ingested it"):
        bronze[name]()


def test_missing_column_names_the_file_and_column():
    broken = make_rows({}).rename(columns={"num_medications": "n_medications"})
    with pytest.raises(ValueError, match=r"diabetic_data_1999-01.*\['num_medications'\] missing"):
        ingest(make_landing(**{"diabetic_data_1999-01": broken}), "1999-01-31")


def test_header_only_extract_is_refused():
    empty = make_rows({}).iloc[0:0]
    with pytest.raises(ValueError, match="diabetic_data_1999-01: header only"):
        ingest(make_landing(**{"diabetic_data_1999-01": empty}), "1999-01-31")


def test_nothing_landed_is_a_clear_error():
    with pytest.raises(ValueError, match="No landing extract up to 1998-12"):
        ingest(make_landing(**{"diabetic_data_1999-01": make_rows({})}), "1998-12-31")


def test_a_bad_run_date_is_named_before_any_extract_is_read():
    def unreadable():
        raise AssertionError("an extract was read")

    with pytest.raises(ConfigError, match=r"run_date '1999-13-01' is not an ISO date"):
        ingest_extracts({"diabetic_data_1999-01": unreadable}, {}, {}, SOURCE, "1999-13-01")


def test_a_resent_extract_with_new_content_is_a_correction():
    """Identity is the content hash: same name, new bytes -> ingested again; same bytes -> no-op."""
    first = make_landing(**{"diabetic_data_1999-01": make_rows({})})
    corrected = make_landing(**{"diabetic_data_1999-01": make_rows({"num_medications": "12"})})
    inventory = {"diabetic_data_1999-01": {"sha256": first["diabetic_data_1999-01"]().sha256}}
    bronze, summary = ingest_extracts(
        corrected, {"diabetic_data_1999-01": corrected["diabetic_data_1999-01"]().sha256},
        inventory, SOURCE, "1999-01-31",
    )  # fmt: skip
    assert list(bronze) == ["diabetic_data_1999-01"]
    assert summary["corrected_extracts"] == ["diabetic_data_1999-01"]
    assert bronze["diabetic_data_1999-01"]()["num_medications"].tolist() == ["12"]


def test_a_failed_correction_leaves_bronzes_previous_copy(tmp_path, monkeypatch):
    """A corrected extract replaces bronze's file in one step: a write that fails (here the disk
    refuses the flush) leaves the previous copy whole, so the next run retries the correction."""
    import os

    import pandas as pd
    from kedro.io import DatasetError

    from readmit_kedro.io.extracts import BronzeFileDataset

    dataset = BronzeFileDataset(filepath=str(tmp_path / "diabetic_data_1999-01.parquet"))
    dataset.save(pd.DataFrame({"encounter_id": ["1", "2"]}))

    def disk_full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(DatasetError, match="Failed while saving"):
        dataset.save(pd.DataFrame({"encounter_id": ["1", "2", "3"]}))
    monkeypatch.undo()
    assert dataset.load()["encounter_id"].tolist() == ["1", "2"]
    assert os.listdir(tmp_path) == ["diabetic_data_1999-01.parquet"]  # no temp file left
