import pytest

from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.landing import LandingKey, LandingZone


@pytest.fixture
def zone(tmp_path) -> LandingZone:
    return LandingZone(str(tmp_path / "landing"))


def _place(zone: LandingZone, key: str) -> None:
    path = zone.path(key)
    zone.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    zone.fs.pipe_file(path, b"{}\n")


def test_write_is_atomic_and_leaves_no_temporary_files(zone, tmp_path):
    key = zone.write("traces", b'{"a": 1}\n', label="x")
    assert zone.read_bytes(key) == b'{"a": 1}\n'
    assert [p.name for p in (tmp_path / "landing").rglob("*") if p.is_file()] == [key.rsplit("/", 1)[1]]
    parsed = LandingKey.parse(key)
    assert (parsed.area, parsed.label) == ("traces", "x")


def test_unknown_area_is_refused(zone):
    with pytest.raises(ValueError, match="landing area 'trace': expected one of traces, submissions, definitions"):
        zone.write("trace", b"")


def test_list_walks_days_and_hours_in_order_after_a_cursor(zone):
    keys = [
        "traces/2026-11-20/23/1795219200000000000-aaaaaa.jsonl",
        "traces/2026-11-21/00/1795219300000000000-bbbbbb.jsonl",
        "traces/2026-11-21/07/1795244400000000000-cccccc.jsonl",
        "traces/2026-11-22/01/1795309200000000000-dddddd.jsonl",
    ]
    for key in reversed(keys):
        _place(zone, key)
    _place(zone, "traces/2026-11-22/01/.1795309300000000000-eeeeee.jsonl.tmp")
    assert zone.list("traces") == keys
    assert zone.list("traces", after=keys[1]) == keys[2:]
    assert zone.list("traces", after=keys[0], limit=2) == keys[1:3]
    assert zone.list("traces", after=keys[-1]) == []
    assert zone.list("submissions") == []


def test_read_lines_numbers_lines_per_file(zone):
    key = zone.write("traces", b"a\r\n\nb\n")
    frame = zone.read_lines([key])
    assert frame.select("line_number", "raw").rows() == [(1, "a"), (2, ""), (3, "b")]


def test_home_resolves_defaults_and_object_store_uris(tmp_path):
    home = FeedbackHome.from_env({"FEEDBACK_HOME": str(tmp_path)})
    assert home.lake_uri == f"{tmp_path}/lake" and home.landing_uri == f"{tmp_path}/landing"
    assert home.dagster_home == f"{tmp_path}/dagster"
    remote = FeedbackHome.from_env(
        {"FEEDBACK_HOME": str(tmp_path), "FEEDBACK_LAKE_URI": "s3://bucket/lake/", "FEEDBACK_STORAGE_OPTIONS": '{"AWS_REGION": "eu-west-1"}'}
    )
    assert remote.lake_uri == "s3://bucket/lake" and remote.storage_options == {"AWS_REGION": "eu-west-1"}
    with pytest.raises(ValueError, match="FEEDBACK_STORAGE_OPTIONS is '\\[1\\]': expected a JSON object"):
        FeedbackHome.from_env({"FEEDBACK_STORAGE_OPTIONS": "[1]"})
