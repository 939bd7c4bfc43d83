"""The sweep store on SQLite and on a real PostgreSQL server: the same tests for both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from scanner.errors import UsageError
from scanner.sweep.diff import diff_documents
from scanner.sweep.store import (
    StoreError,
    SweepStore,
    default_db_url,
    parse_db_url,
    redact,
    storable,
)
from scanner.sweep.tables import METADATA
from tests.sweep.docs import camera, cloud, document, finding

MAC_A = "44:19:b6:00:00:0a"
MAC_B = "3c:ef:8c:00:00:0b"


def record(store: SweepStore, site: str, doc: dict):
    def compare(prev, known):
        return [] if prev is None else diff_documents(prev, doc, known=known)

    return store.record_sweep(site, doc, listen_seconds=0.0, compare=compare)


def test_migrations_build_exactly_the_schema_the_code_uses(db_url):
    with SweepStore.open(db_url) as store:
        assert store.revision() == "0001"
        with store.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), METADATA)
        assert differences == []
    with SweepStore.open(db_url) as again:  # opening an up-to-date database changes nothing
        assert again.revision() == "0001"


def test_sweeps_are_kept_whole_newest_first_per_site(db_url):
    first = document([camera("198.51.100.10", MAC_A)], at=1000.0)
    second = document([camera("198.51.100.10", MAC_A, firmware="V5.7.19"), camera("198.51.100.11", MAC_B)],
                      [finding("198.51.100.11", "video-cloud", "low")], at=2000.0)
    with SweepStore.open(db_url) as store:
        one, none = record(store, "store-001", first)
        two, changes = record(store, "store-001", second)
        other, _ = record(store, "store-002", document([camera("198.51.100.10", MAC_A)], at=3000.0))
        assert none == [] and one.previous_sweep_id is None
        assert two.previous_sweep_id == one.id and other.previous_sweep_id is None
        assert sorted((c.kind, c.identity) for c in changes) == [
            ("camera-appeared", MAC_B), ("finding-raised", MAC_B), ("firmware-changed", MAC_A)]
        assert [s.id for s in store.sweeps("store-001")] == [two.id, one.id]
        assert [s.id for s in store.sweeps()] == [other.id, two.id, one.id]
        listed = store.sweep(two.id)
        assert (listed.devices, listed.cameras, listed.findings, listed.changes, listed.top_level) == (
            2, 2, 1, 3, "medium")
        assert store.document(one.id) == first  # the full document, as it was
        assert store.document(two.id) == second
        assert [c.kind for c in store.changes(two.id)] == [c.kind for c in changes]
        assert store.sites() == ["store-001", "store-002"]


def test_a_baseline_is_a_new_row_and_the_newest_is_in_force(db_url):
    with SweepStore.open(db_url) as store:
        with pytest.raises(UsageError, match="no sweep yet"):
            store.accept_baseline("store-001")
        one, _ = record(store, "store-001", document([camera("198.51.100.10", MAC_A)]))
        first = store.accept_baseline("store-001", note="reviewed by IT")
        two, _ = record(store, "store-001", document([camera("198.51.100.10", MAC_A), camera("198.51.100.11", MAC_B)]))
        second = store.accept_baseline("store-001")
        assert (first.sweep_id, second.sweep_id) == (one.id, two.id)
        assert store.baseline("store-001") == second
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM baselines")).scalar() == 2  # nothing overwritten
        with pytest.raises(UsageError, match="belongs to site 'store-001'"):
            store.accept_baseline("store-002", one.id)
        assert store.accept_baseline(None, one.id).site == "store-001"


def test_changes_back_to_the_baseline_are_stored_but_known(db_url):
    full = document([camera("198.51.100.10", MAC_A), camera("198.51.100.11", MAC_B)])
    with SweepStore.open(db_url) as store:
        record(store, "s", full)
        store.accept_baseline("s")
        record(store, "s", document([camera("198.51.100.10", MAC_A)]))  # MAC_B switched off for the night
        back, changes = record(store, "s", full)
        assert [(c.kind, c.suppressed, c.known_from) for c in changes] == [
            ("camera-appeared", True, f"baseline (sweep {store.baseline('s').sweep_id})")]
        assert back.changes == 0 and back.top_level is None


def test_site_summaries_cover_every_site(db_url):
    with SweepStore.open(db_url) as store:
        record(store, "b-store", document([camera("198.51.100.10", MAC_A, face_capable=True,
                                                  clouds=[cloud("x.example", None, "face-analytics")])]))
        record(store, "a-store", document([]))
        record(store, "a-store", document([camera("198.51.100.10", MAC_A)]))
        store.accept_baseline("a-store")
        summary = {s.site: s for s in store.site_summaries()}
        assert summary["a-store"].sweeps == 2 and summary["a-store"].last.changes == 1
        assert summary["a-store"].baseline.sweep_id == summary["a-store"].last.id
        assert (summary["b-store"].last.face_capable, summary["b-store"].last.clouds) == (1, 1)
        assert summary["b-store"].baseline is None


def test_hostile_strings_are_stored_and_read_back(db_url):
    hostile = "cam\x00era \x1b[31m\udcff \u202e"
    doc = document([camera("198.51.100.10", MAC_A, model=hostile, vendor="Ven\x00dor")])
    with SweepStore.open(db_url) as store:
        sweep, _ = record(store, "s\u00e9", doc)
        stored = store.document(sweep.id)
    assert stored["devices"][0]["model"] == "cam\ufffdera \x1b[31m\\udcff \u202e"
    assert stored == storable(doc)


def test_a_sweep_killed_before_its_commit_leaves_nothing_and_the_next_one_works(db_url, tmp_path):
    """SIGKILL while the sweep's row, document and changes are written but not committed."""
    marker = tmp_path / "in-transaction"
    script = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from sqlalchemy import event
        from scanner.sweep.store import SweepStore
        from tests.sweep.docs import camera, document

        store = SweepStore.open(sys.argv[1])

        def hold(_conn):
            Path(sys.argv[2]).write_text("inserted, not committed")
            time.sleep(600)

        event.listen(store.engine, "commit", hold)
        store.record_sweep("killed-site", document([camera("198.51.100.10", "44:19:b6:00:00:0a")]),
                           listen_seconds=0, compare=lambda prev, known: [])
    """)
    with SweepStore.open(db_url) as store:
        before, _ = record(store, "s", document([camera("198.51.100.10", MAC_A)]))
    proc = subprocess.Popen([sys.executable, "-c", script, db_url, str(marker)], cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "the writer died before reaching its commit"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    with SweepStore.open(db_url) as store:
        assert [s.id for s in store.sweeps()] == [before.id]
        assert store.sites() == ["s"]  # the killed sweep's new site was in the same transaction
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM sweep_changes")).scalar() == 0
            if conn.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        after, changes = record(store, "s", document([camera("198.51.100.10", MAC_A), camera("198.51.100.11", MAC_B)]))
        assert after.previous_sweep_id == before.id
        assert [c.kind for c in changes] == ["camera-appeared"]


def test_a_database_from_a_newer_camsweep_is_refused_clearly(db_url):
    with SweepStore.open(db_url) as store, store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(StoreError, match="schema this camsweep does not know.*newer camsweep"):
        SweepStore.open(db_url)


def test_database_urls():
    assert parse_db_url("sqlite:////var/lib/camsweep/sweeps.db").database == "/var/lib/camsweep/sweeps.db"
    assert parse_db_url("/tmp/x.db").get_backend_name() == "sqlite"
    url = parse_db_url("postgresql://camsweep:s3cret@db.example/sweeps")
    assert url.drivername == "postgresql+psycopg"
    assert "s3cret" not in redact(url)
    assert parse_db_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert default_db_url().startswith("sqlite:///") and default_db_url().endswith("/camsweep/sweeps.db")
    for bad, message in (("mysql://u@h/d", "unsupported database"), ("", "needs a database URL"),
                         ("sqlite+aiosqlite:///x", "unsupported SQLite driver"), ("://", "bad database URL")):
        with pytest.raises(UsageError, match=message):
            parse_db_url(bad)


def test_an_unreachable_server_is_a_one_line_error_without_the_password():
    # Port 1 on the loopback address: nothing listens there, the connection is refused at once.
    with pytest.raises(StoreError) as info:
        SweepStore.open("postgresql://camsweep:s3cret@127.0.0.1:1/sweeps")
    message = str(info.value)
    assert message.startswith("cannot open database postgresql+psycopg://camsweep:***@127.0.0.1:1/sweeps: ")
    assert "s3cret" not in message and "\n" not in message


def test_an_unwritable_sqlite_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create the directory"):
        SweepStore.open(f"sqlite:///{blocker}/sub/sweeps.db")
