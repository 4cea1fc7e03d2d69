"""The replay summary prints the ordering warnings of the last data_processing run."""

from __future__ import annotations

from kedro.io import DataCatalog, MemoryDataset

from readmit_kedro.commands.replay import _ordering_warnings


def test_ordering_warnings_are_listed_under_their_run() -> None:
    report = {"run_date": "2008-12-31", "ordering_warnings": ["2008H1: a", "2008H2: b"]}
    catalog = DataCatalog({"data_quality_report": MemoryDataset(report)})
    assert _ordering_warnings(catalog) == [
        "Data quality (data_processing 2008-12-31): 2 ordering warning(s)",
        "  2008H1: a",
        "  2008H2: b",
    ]


def test_an_older_report_or_none_at_all_is_said_plainly() -> None:
    catalog = DataCatalog({"data_quality_report": MemoryDataset({"run_date": "2007-12-31"})})
    assert _ordering_warnings(catalog) == [
        "Data quality (data_processing 2007-12-31): 0 ordering warning(s)"
    ]
    assert _ordering_warnings(DataCatalog()) == [
        "Data quality (last data_processing run): no report"
    ]
