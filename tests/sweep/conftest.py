"""Sweep-test fixtures: a fresh SQLite file and a fresh PostgreSQL database per test.

PostgreSQL tests run against a real server: ``CAMSWEEP_TEST_PG_URL`` names a database the test
user may connect to and create databases from (tests/run.sh installs and starts PostgreSQL and
sets it). Without it these tests are skipped with the reason, and fail the run when
``CAMSWEEP_REQUIRE_ROOT_TESTS=1`` (as in CI), like the root tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("CAMSWEEP_TEST_PG_URL")
BACKENDS = ["sqlite", "postgresql"]


def _need_pg() -> str:
    if PG_URL:
        return PG_URL
    if os.environ.get("CAMSWEEP_REQUIRE_ROOT_TESTS") == "1":
        pytest.fail("CAMSWEEP_TEST_PG_URL is not set, and this run requires the PostgreSQL tests "
                    "(tests/run.sh starts PostgreSQL and sets it)")
    pytest.skip("needs a PostgreSQL server: set CAMSWEEP_TEST_PG_URL (tests/run.sh does)")


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database's URL (dropped afterwards)."""
    admin_url = sa.make_url(_need_pg()).set(drivername="postgresql+psycopg")
    name = f"camsweep_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield admin_url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards)."""
    with fresh_pg_database() as url:
        yield url


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sweeps.db'}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite (default store) and on PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    url: str = request.getfixturevalue("pg_url")
    return url
