"""An incremental update computed on the driver (Arrow rows) published to a real S3 API (moto's
server): the path a small monthly run takes on prod's datamart, through s3fs."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from readmit_kedro.io.published import PandasPublishedTable, SparkPublishedTable, TableUpdate
from tests.s3.conftest import BUCKETS


def test_driver_rows_update_a_table_on_s3(s3_server, spark, tmp_path):
    import s3fs

    # Spark cannot write s3:// here (no hadoop-aws jars): its first version is written locally
    # and copied up as it is (a manifest names folders relative to the table).
    local = tmp_path / "table"
    first = spark.createDataFrame(
        [(1, "2008-01", "a"), (2, "2008-02", "b")], "id long, month string, v string"
    )
    SparkPublishedTable(filepath=str(local)).save(TableUpdate("month", first, state={"n": 1}))
    options = {"client_kwargs": {"endpoint_url": s3_server.endpoint_url}}
    root = f"{BUCKETS['datamart']}/driver_rows"
    s3 = s3fs.S3FileSystem(**options)
    s3.put(str(local), root, recursive=True)
    table = SparkPublishedTable(filepath=f"s3://{root}", fs_args=options)
    assert sorted(table.snapshot().partitions) == ["2008-01", "2008-02"]

    ids = pa.array([3, 4], pa.int32())  # the table's schema says long: the write casts
    month = pa.table({"id": ids, "month": ["2008-02", "2008-03"], "v": ["c", None]})
    base = table.snapshot()
    table.save(TableUpdate("month", month, ("2008-02",), {"n": 2}, base=base))

    after = table.snapshot()
    assert after.version != base.version and after.state == {"n": 2}
    assert after.partitions["2008-01"] == base.partitions["2008-01"]  # carried by reference
    assert after.partitions["2008-03"].startswith(f"{after.version}/month=")
    read = PandasPublishedTable(filepath=f"s3://{root}", fs_args=options).load()
    rows = read[["id", "v"]].astype(object).where(read[["id", "v"]].notna(), None)
    assert sorted(rows.itertuples(index=False, name=None)) == [(1, "a"), (3, "c"), (4, None)]
    (written,) = s3.find(f"{root}/{after.partitions['2008-03']}")
    with s3.open(written) as handle:  # the table's schema, as Spark wrote the first version
        assert pq.read_schema(handle).field("id").type == pa.int64()
