import polars as pl
import pytest

from feedback_pipeline.lake import Lake


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_read_of_a_missing_table_is_an_empty_frame_of_the_given_schema(lake):
    frame = lake.read("nothing", schema={"a": pl.Int64})
    assert frame.height == 0 and frame.schema == pl.Schema({"a": pl.Int64})
    assert lake.version("nothing") is None and not lake.exists("nothing")


def test_merge_writes_a_version_only_when_content_changes(lake):
    first = pl.DataFrame({"k": [1, 2], "v": ["a", "b"], "h": ["a", "b"]})
    assert lake.merge("t", first, on=["k"], change_column="h").version == 0
    again = lake.merge("t", first, on=["k"], change_column="h")
    assert again.version == 0 and not again.changed
    update = pl.DataFrame({"k": [2, 3], "v": ["B", "c"], "h": ["B", "c"]})
    result = lake.merge("t", update, on=["k"], change_column="h")
    assert (result.version, result.rows_inserted, result.rows_updated) == (1, 1, 1)
    assert lake.read("t").sort("k")["v"].to_list() == ["a", "B", "c"]
    assert lake.read("t", version=0).sort("k")["v"].to_list() == ["a", "b"]


def test_insert_only_merge_keeps_the_first_write(lake):
    lake.merge("t", pl.DataFrame({"k": [1], "v": ["first"]}), on=["k"], update=False)
    result = lake.merge("t", pl.DataFrame({"k": [1, 2], "v": ["second", "new"]}), on=["k"], update=False)
    assert result.rows_inserted == 1
    assert lake.read("t").sort("k")["v"].to_list() == ["first", "new"]


def test_merge_refuses_a_batch_that_repeats_a_key(lake):
    with pytest.raises(ValueError, match=r"repeats the key \['k'\]"):
        lake.merge("t", pl.DataFrame({"k": [1, 1], "v": ["a", "b"]}), on=["k"])
    assert not lake.exists("t")


def test_overwrite_with_a_predicate_replaces_only_matching_rows(lake):
    lake.append("t", pl.DataFrame({"day": ["d1", "d2"], "v": [1, 2]}))
    lake.overwrite("t", pl.DataFrame({"day": ["d2"], "v": [20]}), predicate="day = 'd2'")
    assert lake.read("t").sort("day")["v"].to_list() == [1, 20]


def test_tables_lists_nested_tables(lake):
    lake.append("traces", pl.DataFrame({"a": [1]}))
    lake.append("evaluation_datasets/x", pl.DataFrame({"a": [1]}))
    assert lake.tables() == ["evaluation_datasets/x", "traces"]


def test_table_names_cannot_escape_the_root(lake):
    with pytest.raises(ValueError, match="expected a relative name"):
        lake.table_uri("../elsewhere")


def test_merge_within_a_list_of_partitions_reads_only_those_and_still_upserts(lake):
    first = pl.DataFrame({"k": [1, 2, 3], "day": ["d1", "d2", "d3"], "v": ["a", "b", "c"]})
    lake.merge("t", first, on=["k"], partition_by=["day"])
    update = pl.DataFrame({"k": [2, 4], "day": ["d2", "d2"], "v": ["B", "d"]})
    result = lake.merge("t", update, on=["k"], within={"day": ["d1", "d2"]})
    assert (result.rows_inserted, result.rows_updated) == (1, 1)
    assert lake.read("t").sort("k")["v"].to_list() == ["a", "B", "c", "d"]
    assert lake.table("t").metadata().partition_columns == ["day"]
    with pytest.raises(ValueError, match="within 'day': expected at least one value"):
        lake.merge("t", update.with_columns(v=pl.lit("x")), on=["k"], within={"day": []})
    assert lake.read("t").sort("k")["v"].to_list() == ["a", "B", "c", "d"]


def _metrics(lake: Lake, name: str) -> dict:
    return lake.history(name, 1)[0]["operationMetrics"]


def test_a_merge_within_a_partition_skips_the_other_partitions_files(lake):
    lake.merge("t", pl.DataFrame({"k": ["a", "b"], "day": ["d1", "d1"], "v": [1, 2]}), on=["k"], partition_by=["day"])
    lake.merge("t", pl.DataFrame({"k": ["c"], "day": ["d2"], "v": [3]}), on=["k"], within={"day": "d2"})
    lake.merge("t", pl.DataFrame({"k": ["c", "d"], "day": ["d2", "d2"], "v": [30, 4]}), on=["k"], within={"day": "d2"})
    metrics = _metrics(lake, "t")
    assert (metrics["num_target_files_scanned"], metrics["num_target_files_skipped_during_scan"]) == (1, 1)
    assert lake.read("t").sort("k")["v"].to_list() == [1, 2, 30, 4]


def test_an_insert_only_merge_within_a_partition_keeps_a_key_first_written_in_another(lake):
    lake.merge("t", pl.DataFrame({"k": ["a"], "day": ["d1"], "v": [1]}), on=["k"], partition_by=["day"])
    again = lake.merge("t", pl.DataFrame({"k": ["a", "b"], "day": ["d2", "d2"], "v": [9, 2]}), on=["k"], update=False,
                       within={"day": "d2"})
    assert again.rows_inserted == 1
    assert lake.read("t").sort("k").rows() == [("a", "d1", 1), ("b", "d2", 2)]


def test_a_delete_within_partitions_touches_only_those(lake):
    frame = pl.DataFrame({"k": ["a", "a", "b"], "day": ["d1", "d2", "d2"]})
    lake.append("t", frame, partition_by=["day"])
    deleted = lake.delete("t", "k IN ('a')", within={"day": ["d2"]})
    assert deleted.rows_deleted == 1
    assert lake.read("t").sort("k", "day").rows() == [("a", "d1"), ("b", "d2")]
