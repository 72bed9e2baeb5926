"""`market backup` of a live SQLite marketplace and `market restore`: the copy holds every committed job and
passes SQLite's integrity check; a restore never replaces the database under a running server."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sparecycles.agent.market_server import backup, schema, server_lock
from sparecycles.agent.market_server.db import open_engine
from tests.market.market_process import MarketProcess

JOB = {
    "spec": {
        "image": "127.0.0.1:5000/sparecycles-test/busybox@sha256:" + "a" * 64,
        "command": ["sh", "-c", "echo hi > /job/output/out.txt"],
        "cpus": 0.5,
        "max_runtime_s": 60,
    },
    "max_price_per_core_hour": 3_600_000,
    "bidding_window_s": 1,
}
POSTGRES = "postgresql+psycopg://operator:secret@127.0.0.1:5432/market"  # refused before any connection


@pytest.fixture
def market(tmp_path: Path) -> Iterator[MarketProcess]:
    running = MarketProcess(tmp_path / "market")
    yield running
    running.stop()


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def requester_names(path: Path) -> set[str]:
    with contextlib.closing(read_only(path)) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM requesters")}


class JobLoad:
    """Requesters submitting jobs over HTTP as fast as the server takes them, on one thread."""

    def __init__(self, url: str, api_key: str) -> None:
        self._url = url
        self._key = api_key
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._committed: list[str] = []  # ids whose POST answered 201, in that order
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._submit, daemon=True) for _ in range(1)]

    def __enter__(self) -> JobLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def committed(self) -> list[str]:
        with self._lock:
            return list(self._committed)

    def wait_for(self, count: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.committed()) < count:
            assert not self.failures, self.failures[:3]
            assert time.monotonic() < deadline, f"only {len(self.committed())} jobs were submitted"
            time.sleep(0.02)

    def _submit(self) -> None:
        headers = {"Authorization": f"Bearer {self._key}"}
        with httpx.Client(base_url=self._url, headers=headers, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/v1/jobs", json=JOB)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    return
                if response.status_code == 201:
                    with self._lock:
                        self._committed.append(response.json()["job_id"])
                elif response.status_code == 429:  # a rate limit: wait as told, briefly
                    time.sleep(min(1.0, float(response.headers.get("Retry-After", "0.2"))))
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:300]}")
                    return


@pytest.mark.slow
def test_a_backup_of_a_live_server_under_load_restores_every_committed_job(
    tmp_path: Path, market: MarketProcess
) -> None:
    key = market.operator("add-requester", "studio")
    market.operator("credit", "studio", str(10**24))
    market.start()
    copy = tmp_path / "backups" / "market.db"
    copy.parent.mkdir()
    with JobLoad(market.url(), key) as load:
        load.wait_for(20)
        committed_before = load.committed()  # each answered 201, so committed, before the backup began
        made = market.cli("backup", str(copy))
        submitted_by_then = len(load.committed())
        load.wait_for(submitted_by_then + 20)  # the load went on past the backup
    assert not load.failures, load.failures[:3]
    assert made.returncode == 0, made.stderr
    assert "integrity check ok" in made.stdout
    assert copy.stat().st_mode & 0o777 == 0o600  # it holds key hashes, like the live database
    assert not list(copy.parent.glob("*.partial*"))

    restored = MarketProcess(market.folder, data_dir=tmp_path / "restored")
    put_back = restored.cli("restore", str(copy))
    assert put_back.returncode == 0, put_back.stderr
    database = restored.data / "market.db"
    with contextlib.closing(read_only(database)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        ids = {row[0] for row in connection.execute("SELECT id FROM jobs")}
    assert set(committed_before) <= ids
    assert f"{len(ids)} jobs" in made.stdout  # the backup reported what it holds
    assert len(ids) <= len(load.committed())  # and nothing that was never committed


@pytest.mark.slow
def test_restore_refuses_while_a_server_runs_and_keeps_the_replaced_database(
    tmp_path: Path, market: MarketProcess
) -> None:
    alpha = market.operator("add-requester", "alpha")
    saved = tmp_path / "alpha.db"
    assert market.cli("backup", str(saved)).returncode == 0
    beta = market.operator("add-requester", "beta")
    market.start()
    assert market.process is not None
    refused = market.cli("restore", str(saved))
    assert refused.returncode == 1
    assert "stop the marketplace first" in refused.stderr
    assert f"pid {market.process.pid}" in refused.stderr
    assert "Traceback" not in refused.stderr
    database = market.data / "market.db"
    assert requester_names(database) == {"alpha", "beta"}  # untouched

    market.stop()
    put_back = market.cli("restore", str(saved))
    assert put_back.returncode == 0, put_back.stderr
    assert requester_names(database) == {"alpha"}
    (aside,) = market.data.glob("market.db.before-restore-*[0-9Z]")
    assert str(aside) in put_back.stdout
    assert requester_names(aside) == {"alpha", "beta"}
    assert not (market.data / "market.db-wal").exists()

    market.start()  # the server serves the restored database: alpha is known again, beta is not
    for key, status in ((alpha, 200), (beta, 401)):
        assert (
            httpx.get(f"{market.url()}/v1/requester", headers={"Authorization": f"Bearer {key}"}).status_code == status
        )


def test_backup_and_restore_refuse_postgresql_and_point_to_pg_dump(tmp_path: Path) -> None:
    operator = MarketProcess(tmp_path / "market")
    for command in ("backup", "restore"):
        result = operator.cli(command, str(tmp_path / "market.dump"), "--db", POSTGRES)
        assert result.returncode == 1
        assert "pg_dump -Fc" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "market.dump").exists()


# -- the module, in-process ------------------------------------------------------------------------------


def marketplace_database(path: Path) -> Path:
    """An empty marketplace database at ``path``, migrated like a server's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = open_engine(f"sqlite:///{path}")
    schema.upgrade(engine)
    engine.dispose()
    return path


def test_a_damaged_or_foreign_file_is_refused_and_the_database_stays(tmp_path: Path) -> None:
    data = tmp_path / "data"
    live = marketplace_database(data / "market.db")
    before = live.read_bytes()
    damaged = tmp_path / "damaged.db"
    shutil.copy(backup.backup(live, tmp_path / "good.db").path, damaged)
    with damaged.open("r+b") as handle:  # a page of the middle overwritten: a bad sector
        handle.seek(8192)
        handle.write(b"\xff" * 4096)
    foreign = tmp_path / "foreign.db"
    with contextlib.closing(sqlite3.connect(foreign)) as connection:
        connection.execute("CREATE TABLE jobs (id TEXT)")
    (tmp_path / "notes.txt").write_text("not a database")
    for source, reason in [
        (damaged, "integrity check|damaged"),
        (foreign, "not a marketplace database"),
        (tmp_path / "notes.txt", "not a SQLite database"),
        (tmp_path / "absent.db", "does not exist"),
        (live, "live database itself"),
    ]:
        with pytest.raises(backup.BackupError, match=reason):
            backup.restore(source, live, data_dir=data)
    assert live.read_bytes() == before
    assert sorted(path.name for path in data.iterdir()) == ["market.db", "server.lock"]


def crashed_server_files(folder: Path) -> Path:
    """A marketplace database with a write-ahead log that holds a requester, as a killed server leaves them."""
    live = marketplace_database(folder / "market.db")
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute(
        "INSERT INTO requesters (id, name, api_key_sha256, credit, held, created_at) "
        "VALUES ('r1', 'lost-in-wal', 'h', '0', '0', '2026-01-01 00:00:00')"
    )
    left = {suffix: Path(f"{live}{suffix}").read_bytes() for suffix in ("", "-wal")}
    writer.close()  # folds the log in and deletes it: put the files back as they were before
    for suffix, content in left.items():
        Path(f"{live}{suffix}").write_bytes(content)
    assert Path(f"{live}-wal").stat().st_size > 0
    return live


@pytest.mark.parametrize("database_lost", [False, True])
def test_a_write_ahead_log_left_by_a_crashed_server_is_not_replayed_into_the_restored_database(
    tmp_path: Path, database_lost: bool
) -> None:
    saved = backup.backup(marketplace_database(tmp_path / "origin" / "market.db"), tmp_path / "saved.db").path
    live = crashed_server_files(tmp_path / "crashed")
    if database_lost:  # only the log is left: it must not be taken for the restored database's
        live.unlink()

    report = backup.restore(saved, live, data_dir=live.parent)
    assert requester_names(live) == set()
    assert not Path(f"{live}-wal").exists() or Path(f"{live}-wal").stat().st_size == 0
    if database_lost:
        assert report.kept_aside is None
        assert list(live.parent.glob("market.db.before-restore-*-wal"))  # kept, not deleted
    else:
        assert report.kept_aside is not None
        assert requester_names(report.kept_aside) == {"lost-in-wal"}  # the old database keeps its last writes


def test_servers_share_the_data_folder_and_a_restore_waits_for_none(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_lock.serving(data), server_lock.serving(data):
        assert server_lock.server_pids(data) == [os.getpid()]
        with pytest.raises(server_lock.DataDirBusy, match=f"pid {os.getpid()}"), server_lock.exclusive(data):
            pass
    with (
        server_lock.exclusive(data),
        pytest.raises(server_lock.DataDirBusy, match="restore"),
        server_lock.serving(data, patience_s=0),
    ):
        pass
    assert server_lock.server_pids(data) == []
