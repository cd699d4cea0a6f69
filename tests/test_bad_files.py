"""Bad files never block others: refused at the import door, quarantined in the landing zone,
landing atomic on a full disk, and embedded submissions landed once across a kill."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
from feedback_pipeline.cli.pipeline import run_pending
from feedback_pipeline.exports import import_traces
from feedback_pipeline.landing import LandingWriteError, LandingZone, processed_high_water, text_problem
from tests.conftest import FIXTURES, REPO

JSONL = FIXTURES / "traces.jsonl"


def _quiet(*_args, **_kwargs):
    return None


def _latin1_export(path: Path) -> Path:
    lines = JSONL.read_bytes().splitlines()[:3]
    lines[2] = lines[2].replace(b'"info"', b'"inf\xe9"', 1)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_text_problem_names_what_the_bytes_are():
    assert text_problem(b'{"a": 1}\n') is None
    assert text_problem(gzip.compress(b"{}")).startswith("binary or compressed file: gzip data")
    assert text_problem(b"PK\x03\x04rest").startswith("binary or compressed file: zip data")
    assert text_problem(b'{"a": 1}\n{"b"\x00}').startswith("binary or compressed file: a NUL byte at byte 13 (line 2)")
    assert text_problem(b'{"a": 1}\n{"caf\xe9": 2}') == "not UTF-8 at byte 14 (line 2: e9 22 3a 20); expected UTF-8 text"
    assert "UTF-16" in text_problem("{}".encode("utf-16"))


def test_a_folder_with_a_bad_file_in_the_middle_lands_the_others(cli, home, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(JSONL.read_bytes())
    _latin1_export(folder / "b.jsonl")
    (folder / "c.json").write_text((FIXTURES / "trace_0.json").read_text())
    done = cli("traces", "import", str(folder), check=False)
    assert done.returncode == 1
    err = done.stderr.decode()
    assert f"refused {folder / 'b.jsonl'}: not UTF-8 at byte " in err and "(line 3: e9" in err
    assert "Traceback" not in err
    assert b"landed 201 traces from 2 file(s)" in done.stdout
    sources = {key.rsplit("_", 1)[-1].split(".L")[0] for key in home.landing().list("traces")}
    assert sources == {"a.jsonl", "c.json"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (os.urandom(4096).replace(b"\x1f", b"x").replace(b"P", b"x"), "binary or compressed file: a NUL byte"),
        (b"\x00" * 100, "binary or compressed file: a NUL byte at byte 0"),
        (b"BZh91AY&SY" + os.urandom(64), "binary or compressed file: bzip2 data"),
    ],
)
def test_binary_files_are_refused_whole_with_the_reason(home, tmp_path, content, reason):
    path = tmp_path / "export.jsonl"
    path.write_bytes(content)
    summary = import_traces([str(path)], home.landing())
    assert (summary.files, summary.traces) == (0, 0)
    assert summary.refused[str(path)].startswith(reason)
    assert home.landing().list("traces") == []


def test_zip_archives_are_refused_and_gzip_exports_are_read(home, tmp_path):
    archive = tmp_path / "export.jsonl"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("traces.jsonl", JSONL.read_text())
    compressed = tmp_path / "nested" / "traces.jsonl.gz"
    compressed.parent.mkdir()
    compressed.write_bytes(gzip.compress(JSONL.read_bytes()))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(compressed.read_bytes()[:500])
    summary = import_traces([str(archive), str(tmp_path / "nested"), str(cut)], home.landing())
    assert summary.refused[str(archive)].startswith("binary or compressed file: zip data")
    assert summary.refused[str(cut)].startswith("binary or compressed file: the gzip data is corrupt or cut short")
    assert (summary.files, summary.traces) == (1, 200)
    assert all(key.endswith("_traces.jsonl.L0.jsonl") for key in summary.landing_keys)
    assert not run_pending(home, echo=_quiet).failures
    assert home.lake().read("traces").height == 200


def test_gzip_on_standard_input(cli, home):
    done = cli("traces", "import", "-", input=gzip.compress((FIXTURES / "trace_2.json").read_bytes()))
    assert b"landed 1 traces" in done.stdout


def test_bad_files_in_the_landing_zone_are_quarantined_and_the_rest_ingests(home):
    landing = home.landing()
    misnamed = landing.write("traces", JSONL.read_bytes(), label="no-dates-here")
    binary = landing.write("traces", gzip.compress(JSONL.read_bytes()), label="2026-11-01_2026-11-01_x.jsonl.L0")
    import_traces([str(JSONL)], landing)
    latin1 = landing.write("traces", b'{"caf\xe9": 1}\n', label="2026-11-01_2026-11-01_y.jsonl.L0")
    with dg.instance_for_test() as instance:
        from feedback_pipeline_dagster.sensors import traces as trace_sensors

        tick = trace_sensors.trace_files_sensor(
            dg.build_sensor_context(instance=instance, resources={"landing": LandingResource(uri=home.landing_uri), "lake": LakeResource(uri=home.lake_uri)})
        )
        assert len(tick.run_requests) == 1, "a misnamed file does not stop the sensor"
    assert not run_pending(home, echo=_quiet).failures
    lake = home.lake()
    assert lake.read("traces").height == 200
    quarantined = lake.read("trace_rejections").filter(pl.col("line_number") == 0).sort("landing_key")
    reasons = dict(zip(quarantined["landing_key"], quarantined["reason"], strict=True))
    assert set(reasons) == {misnamed, binary, latin1}
    assert reasons[misnamed].startswith("file quarantined: name not in the landing format")
    assert reasons[binary].startswith("file quarantined: binary or compressed file: gzip data")
    assert reasons[latin1].startswith("file quarantined: not UTF-8 at byte 5 (line 1")
    assert processed_high_water(lake, "traces") == landing.list("traces")[-1]
    assert run_pending(home, echo=_quiet).runs == 0, "quarantined files are not pending again"


def _tiny_disk(path: Path, size: str) -> contextlib.AbstractContextManager[Path]:
    """A real tmpfs of `size` at `path` (root in this sandbox), unmounted afterwards."""

    @contextlib.contextmanager
    def mounted():
        path.mkdir(parents=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the RLIMIT_FSIZE test covers it")
        try:
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], check=True)

    return mounted()


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_landing_on_a_full_disk_leaves_nothing_and_says_so(tmp_path):
    with _tiny_disk(tmp_path / "disk", "256k") as disk:
        zone = LandingZone(str(disk / "landing"))
        small = zone.write("traces", b"{}\n", label="small")
        with pytest.raises(LandingWriteError, match=r"could not land traces/.* \(1,048,576 bytes\): No space left on device"):
            zone.write("traces", b"x" * 1024 * 1024, label="big")
        assert _files_under(disk / "landing") == [small]


def test_traces_import_on_a_full_disk_is_one_clear_line(cli, home, tmp_path, monkeypatch):
    with _tiny_disk(tmp_path / "disk", "128k") as disk:
        monkeypatch.setenv("FEEDBACK_LANDING_URI", str(disk / "landing"))
        done = cli("traces", "import", str(JSONL), check=False)
        err = done.stderr.decode()
        assert done.returncode == 1 and "Traceback" not in err
        assert "No space left on device; nothing was written" in err
        assert not [name for name in _files_under(disk) if name.rsplit("/", 1)[-1].startswith(".")]


def test_a_file_size_limit_fails_the_same_way(tmp_path):
    script = (
        "import resource, signal, sys\n"
        "from feedback_pipeline.landing import LandingZone, LandingWriteError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        f"    LandingZone({str(tmp_path / 'landing')!r}).write('traces', b'x' * 100_000, label='big')\n"
        "except LandingWriteError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert "File too large; nothing was written" in done.stdout
    assert _files_under(tmp_path / "landing") == []


_KILLED_AT_LANDING = """
import os, sys
from feedback_pipeline import landing
from feedback_pipeline.cli.pipeline import run_pending
from feedback_pipeline.home import FeedbackHome

put = landing.LandingZone.put
def put_then_die(self, key, data):
    if key.startswith("submissions/") and sys.argv[1] == "before":
        os.kill(os.getpid(), 9)
    put(self, key, data)
    if key.startswith("submissions/"):
        os.kill(os.getpid(), 9)
landing.LandingZone.put = put_then_die
run_pending(FeedbackHome.from_env(), echo=lambda *a, **k: None)
"""


@pytest.mark.parametrize("moment", ["before", "after"])
def test_a_kill_around_landing_embedded_submissions_leaves_one_copy(home, moment):
    import_traces([str(JSONL)], home.landing())
    env = dict(os.environ, PYTHONPATH=str(REPO))
    killed = subprocess.run([sys.executable, "-c", _KILLED_AT_LANDING, moment], cwd=REPO, env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    landing = home.landing()
    assert len(landing.list("submissions")) == (1 if moment == "after" else 0)
    assert not run_pending(home, echo=_quiet).failures
    keys = landing.list("submissions")
    assert len(keys) == 1
    assert sum(len(landing.read_bytes(key).splitlines()) for key in keys) == 213
    files = home.lake().read("submission_files")
    assert files["duplicates"].sum() == 0
    assert home.lake().read("submissions").height == 213


def test_the_derived_file_is_named_in_derived_files(home):
    import_traces([str(JSONL)], home.landing())
    run_pending(home, echo=_quiet)
    derived = home.lake().read("derived_files")
    assert derived["derived_key"].unique().to_list() == home.landing().list("submissions")
    assert derived["source_key"].to_list() == home.landing().list("traces")
    assert json.loads(home.landing().read_bytes(derived["derived_key"][0]).splitlines()[0])["origin"] == "mlflow-import"
