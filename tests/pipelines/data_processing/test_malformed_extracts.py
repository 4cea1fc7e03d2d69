"""Extracts broken the way a hospital feed breaks them: rows with a wrong field count, and files
that are not UTF-8 text. Each gets a refusal naming the file and the problem, or a quarantine of
the bad rows alone under a rule that names the cause; the good rows keep their columns."""

from __future__ import annotations

import codecs
import gzip

import pandas as pd
import pytest
from kedro.io import DatasetError

from readmit_kedro.io.extracts import LandingExtractDataset
from readmit_kedro.pipelines.data_processing.bronze import ingest_extracts
from readmit_kedro.pipelines.data_processing.silver import build_silver

from .conftest import make_rows, written

NAME = "diabetic_data_1999-01"


def _write(tmp_path, payload: bytes) -> LandingExtractDataset:
    path = tmp_path / f"{NAME}.csv.gz"
    path.write_bytes(gzip.compress(payload))
    return LandingExtractDataset(filepath=str(path))


def _csv_lines(*overrides: dict[str, str]) -> list[str]:
    return make_rows(*overrides).to_csv(index=False).splitlines()


def test_rows_with_a_wrong_field_count_are_quarantined_alone(tmp_path, spark, id_mapping, params):
    header, *rows = _csv_lines({"encounter_id": "1"}, {"encounter_id": "2"}, {"encounter_id": "3"})
    rows[0] += ",EXTRA"  # one field too many: line 2
    rows[2] = rows[2].rsplit(",", 1)[0]  # one field too few: line 4
    extract = _write(tmp_path, "\n".join([header, *rows, ""]).encode()).load()
    assert extract.row_errors == (
        "line 2: 52 fields, the header has 51",
        None,
        "line 4: 50 fields, the header has 51",
    )
    landing = {NAME: lambda: extract}
    bronze, _ = ingest_extracts(
        landing, {NAME: extract.sha256}, {}, {"data_source": "synthetic"}, "1999-01-31"
    )
    frame = spark.createDataFrame(pd.concat(written(bronze).values(), ignore_index=True))
    silver, quarantine, report = build_silver(
        frame, id_mapping, "1999-01-31", params["data_quality"]
    )

    assert report["quarantined_by_rule"] == {"malformed_row": 2}
    kept = silver.collect()
    assert [(r["encounter_id"], r["num_medications"]) for r in kept] == [(2, 11)]  # unshifted
    reasons = sorted(r["_parse_error"] for r in quarantine.collect())
    assert reasons == [
        "line 2: 52 fields, the header has 51",
        "line 4: 50 fields, the header has 51",
    ]


@pytest.mark.parametrize(
    ("payload", "found"),
    [
        (codecs.BOM_UTF16_LE + "encounter_id,patient_nbr\n1,2\n".encode("utf-16-le"), "UTF-16"),
        ("encounter_id,patient_nbr\n1,2\n".encode("utf-16-le"), "NUL bytes"),
        (bytes(range(256)) * 4, "NUL bytes"),
        ("encounter_id,medical_specialty\n1,Médecine\n".encode("latin-1"), "not UTF-8"),
    ],
    ids=["utf16-bom", "utf16-no-bom", "binary", "latin1"],
)
def test_a_file_that_is_not_utf8_text_is_refused_naming_file_and_encoding(tmp_path, payload, found):
    with pytest.raises(DatasetError, match=found) as refused:
        _write(tmp_path, payload).load()
    assert f"{NAME}.csv.gz" in str(refused.value)
    assert "UnicodeDecodeError" not in str(refused.value)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    header, row = _csv_lines({"encounter_id": "7"})
    extract = _write(tmp_path, codecs.BOM_UTF8 + f"{header}\n{row}\n".encode()).load()
    assert extract.frame.columns[0] == "encounter_id"
    assert extract.frame["encounter_id"].tolist() == ["7"]
