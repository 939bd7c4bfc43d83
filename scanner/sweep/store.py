"""Where sweeps are kept: an embedded SQLite file by default, PostgreSQL with ``--db postgresql://…``.

Both through SQLAlchemy 2 with the same schema (``tables.py``), built and upgraded by the Alembic
migrations shipped in ``migrations/``, which run automatically when a store is opened.

Consistency: a sweep is written in ONE transaction together with its full result document and
its changes, and only once the sweep has finished, so a sweep killed at any moment (SIGKILL
included) leaves no partial row. On SQLite every transaction starts with an explicit
``BEGIN IMMEDIATE`` (pysqlite would otherwise commit DDL implicitly), which makes migrations
transactional too and serialises writers; on PostgreSQL a sweep locks its site row, and
migrations take an advisory lock, so concurrent sweeps of one site see each other's results.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError

import scanner
from scanner.errors import CamsweepError, UsageError
from scanner.sweep import tables as t
from scanner.sweep.diff import Change, highest_level

DEFAULT_SITE = "default"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x63616D73  # "cams": pg_advisory_xact_lock key for schema upgrades


class StoreError(CamsweepError):
    """The sweep database cannot be opened, migrated, read or written (exit 3)."""


def default_db_url() -> str:
    """SQLite in the system (root) or user data directory: no setup needed."""
    if os.geteuid() == 0:
        base = Path("/var/lib/camsweep")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "camsweep"
    return f"sqlite:///{base / 'sweeps.db'}"


def parse_db_url(text: str) -> URL:
    """``sqlite:///PATH``, a plain file path, or ``postgresql://…`` (psycopg 3); UsageError otherwise."""
    text = text.strip()
    if not text:
        raise UsageError("--db needs a database URL (sqlite:///PATH or postgresql://USER@HOST/DB)")
    if "://" not in text:
        return URL.create("sqlite", database=str(Path(text).expanduser().resolve()))
    try:
        url = sa.make_url(text)
    except ArgumentError as exc:
        raise UsageError(f"bad database URL {text!r} (want sqlite:///PATH or postgresql://USER@HOST/DB)") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.get_driver_name() not in ("pysqlite", ""):
            raise UsageError(f"unsupported SQLite driver in {redact(url)} (use sqlite:///PATH)")
        return url.set(drivername="sqlite")
    if backend in ("postgresql", "postgres"):
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise UsageError("PostgreSQL needs psycopg 3: pip install 'camsweep[postgresql]'") from exc
        return url.set(drivername="postgresql+psycopg")
    raise UsageError(f"unsupported database {backend!r} in {redact(url)} (sqlite or postgresql)")


def redact(url: URL | str) -> str:
    """The URL without its password, for messages."""
    if isinstance(url, str):
        try:
            url = sa.make_url(url)
        except ArgumentError:
            return "(unparsable URL)"
    return url.render_as_string(hide_password=True)


def alembic_config(url: URL | str) -> Any:
    """An Alembic ``Config`` for the shipped migrations (there is no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", redact(url).replace("%", "%%"))
    return cfg


def storable(value: Any) -> Any:
    """``value`` as plain JSON data that every backend stores: PostgreSQL's JSONB refuses the NUL
    character and lone surrogates, which hostile device strings may carry; NUL becomes U+FFFD."""
    if isinstance(value, str):
        # lone surrogates (undecodable bytes) become visible \udcxx text: JSONB refuses them too
        return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {storable(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    return storable(str(value))


@dataclass
class SweepRecord:
    id: int
    site: str
    started_at: float
    finished_at: float
    targets: list[str]
    listen_seconds: float
    tool_version: str
    devices: int
    cameras: int
    face_capable: int
    clouds: int
    findings: int
    changes: int
    top_level: str | None
    previous_sweep_id: int | None


@dataclass
class BaselineRecord:
    id: int
    site: str
    sweep_id: int
    accepted_at: float
    note: str


@dataclass
class SiteSummary:
    site: str
    sweeps: int
    first_at: float | None
    last: SweepRecord | None
    baseline: BaselineRecord | None


def document_counts(doc: dict[str, Any]) -> dict[str, int]:
    """Summary counts of a result document (devices, cameras, face-capable, destinations, findings)."""
    devices = [d for d in doc.get("devices") or [] if isinstance(d, dict)]
    clouds = 0
    for d in devices:
        seen = {(c.get("host") or c.get("ip")) for c in d.get("clouds") or [] if isinstance(c, dict)}
        clouds += len(seen)
    return {
        "devices": len(devices),
        "cameras": sum(1 for d in devices if d.get("is_camera")),
        "face_capable": sum(1 for d in devices if d.get("face_capable") is True),
        "clouds": clouds,
        "findings": len(doc.get("findings") or []),
    }


# compare(previous sweep's document or None, known states) -> changes. Known states are
# (label, document) pairs: the accepted baseline first, then the site's recent sweeps before the
# previous one, newest first (see diff.diff_documents).
Comparer = Callable[[dict[str, Any] | None, list[tuple[str, dict[str, Any]]]], list[Change]]
RECENT_SWEEPS = 7  # how many earlier sweeps count as known states (a week of nightly sweeps)


class SweepStore:
    """Sweeps, their changes and baselines of one or many sites, in one database."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self.url = url

    @classmethod
    def open(cls, text: str) -> SweepStore:
        """Open (creating when needed) the database at ``text`` and bring its schema up to date."""
        url = parse_db_url(text)
        engine = _engine(url)
        store = cls(engine, url)
        try:
            store.migrate()
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        return redact(self.url)

    # ---- schema ---------------------------------------------------------------------------
    def migrate(self) -> None:
        """Upgrade to the newest schema in one transaction (a no-op when already there)."""
        from alembic import command
        from alembic.util.exc import CommandError

        cfg = alembic_config(self.url)
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except CommandError as exc:
            raise StoreError(f"database {self.where} has a schema this camsweep does not know ({exc}); "
                             "it was probably upgraded by a newer camsweep") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database {self.where}: {_reason(exc)}") from exc

    def revision(self) -> str | None:
        """The schema revision the database is at (Alembic's version table)."""
        from alembic.runtime.migration import MigrationContext

        with self._connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # ---- writing ----------------------------------------------------------------------------
    def record_sweep(self, site: str, doc: dict[str, Any], *, listen_seconds: float, compare: Comparer,
                     started_at: float | None = None, finished_at: float | None = None) -> tuple[
                         SweepRecord, list[Change]]:
        """Store a finished sweep with its document and its changes, all in one transaction.

        ``compare(previous document or None, known states)`` runs inside the transaction (with
        the site locked), so the changes are against the sweep really before (see ``Comparer``).
        """
        site = check_site(site)
        doc = storable(doc)
        scan = doc.get("scan") or {}
        started = float(started_at if started_at is not None else scan.get("started") or time.time())
        finished = float(finished_at if finished_at is not None else scan.get("finished") or time.time())
        counts = document_counts(doc)
        with self._begin() as conn:
            site_id = self._site_id(conn, site, create=True, lock=True)
            assert site_id is not None
            recent = conn.execute(
                sa.select(t.sweeps.c.id, t.sweeps.c.result).where(t.sweeps.c.site_id == site_id)
                .order_by(t.sweeps.c.finished_at.desc(), t.sweeps.c.id.desc()).limit(1 + RECENT_SWEEPS)).all()
            previous = recent[0] if recent else None
            known: list[tuple[str, dict[str, Any]]] = []
            baseline = self._baseline_row(conn, site_id)
            if baseline is not None:
                known.append((f"baseline (sweep {baseline.sweep_id})", conn.execute(
                    sa.select(t.sweeps.c.result).where(t.sweeps.c.id == baseline.sweep_id)).scalar_one()))
            known.extend((f"sweep {row.id}", row.result) for row in recent[1:])
            changes = compare(previous.result if previous else None, known)
            live = [c for c in changes if not c.suppressed]
            values = dict(
                site_id=site_id, started_at=started, finished_at=finished,
                targets=json.dumps(scan.get("targets") or []), listen_seconds=float(listen_seconds),
                tool_version=str((doc.get("tool") or {}).get("version") or scanner.__version__)[:40],
                changes=len(live), top_level=highest_level(live),
                previous_sweep_id=previous.id if previous else None, result=doc, **counts,
            )
            sweep_id = conn.execute(sa.insert(t.sweeps).values(**values).returning(t.sweeps.c.id)).scalar_one()
            if changes:
                conn.execute(sa.insert(t.sweep_changes), [
                    {"sweep_id": sweep_id, "kind": c.kind, "level": c.level, "identity": c.identity[:80],
                     "suppressed": c.suppressed, "detail": storable(c.to_dict())} for c in changes])
        record = SweepRecord(
            id=sweep_id, site=site, started_at=started, finished_at=finished, targets=list(scan.get("targets") or []),
            listen_seconds=float(listen_seconds), tool_version=str(values["tool_version"]), changes=len(live),
            top_level=highest_level(live), previous_sweep_id=previous.id if previous else None, **counts)
        return record, changes

    def accept_baseline(self, site: str | None, sweep_id: int | None = None, note: str = "") -> BaselineRecord:
        """Mark a sweep (default: the site's newest) as the accepted state of its site."""
        with self._begin() as conn:
            if sweep_id is not None:
                row = conn.execute(sa.select(t.sweeps.c.id, t.sites.c.name).join(t.sites)
                                   .where(t.sweeps.c.id == sweep_id)).first()
                if row is None:
                    raise UsageError(f"no sweep {sweep_id} in {self.where}")
                if site is not None and row.name != site:
                    raise UsageError(f"sweep {sweep_id} belongs to site {row.name!r}, not {site!r}")
                site = row.name
            else:
                site = check_site(site or DEFAULT_SITE)
                site_id = self._site_id(conn, site)
                newest = None if site_id is None else conn.execute(
                    sa.select(t.sweeps.c.id).where(t.sweeps.c.site_id == site_id)
                    .order_by(t.sweeps.c.finished_at.desc(), t.sweeps.c.id.desc()).limit(1)).scalar()
                if newest is None:
                    raise UsageError(f"site {site!r} has no sweep yet in {self.where} (run camsweep sweep first)")
                sweep_id = int(newest)
            assert site is not None
            site_id = self._site_id(conn, site)
            accepted = time.time()
            new_id = conn.execute(sa.insert(t.baselines).values(
                site_id=site_id, sweep_id=sweep_id, accepted_at=accepted, note=storable(note))
                .returning(t.baselines.c.id)).scalar_one()
        return BaselineRecord(new_id, site, sweep_id, accepted, note)

    # ---- reading ------------------------------------------------------------------------------
    def sites(self) -> list[str]:
        with self._connect() as conn:
            return [str(n) for n in conn.execute(sa.select(t.sites.c.name).order_by(t.sites.c.name)).scalars()]

    def sweeps(self, site: str | None = None, limit: int | None = None) -> list[SweepRecord]:
        """Sweeps newest first, of one site or of all."""
        query = _sweep_select()
        if site is not None:
            query = query.where(t.sites.c.name == site)
        query = query.order_by(t.sweeps.c.finished_at.desc(), t.sweeps.c.id.desc())
        if limit:
            query = query.limit(limit)
        with self._connect() as conn:
            return [_sweep_record(row) for row in conn.execute(query)]

    def sweep(self, sweep_id: int) -> SweepRecord:
        with self._connect() as conn:
            row = conn.execute(_sweep_select().where(t.sweeps.c.id == sweep_id)).first()
        if row is None:
            raise UsageError(f"no sweep {sweep_id} in {self.where} (see camsweep history)")
        return _sweep_record(row)

    def document(self, sweep_id: int) -> dict[str, Any]:
        """The full result document of a sweep."""
        with self._connect() as conn:
            doc = conn.execute(sa.select(t.sweeps.c.result).where(t.sweeps.c.id == sweep_id)).scalar()
        if doc is None:
            raise UsageError(f"no sweep {sweep_id} in {self.where} (see camsweep history)")
        return dict(doc)

    def changes(self, sweep_id: int) -> list[Change]:
        """The changes recorded when the sweep was stored (against the site's sweep before it)."""
        with self._connect() as conn:
            rows = conn.execute(sa.select(t.sweep_changes.c.detail).where(t.sweep_changes.c.sweep_id == sweep_id)
                                .order_by(t.sweep_changes.c.id)).scalars()
            return [Change.from_dict(dict(d)) for d in rows]

    def baseline(self, site: str) -> BaselineRecord | None:
        with self._connect() as conn:
            site_id = self._site_id(conn, site)
            return None if site_id is None else self._baseline_row(conn, site_id)

    def site_summaries(self) -> list[SiteSummary]:
        """Per site: number of sweeps, the first and the newest sweep, the baseline in force."""
        summaries = []
        with self._connect() as conn:
            stats = conn.execute(sa.select(t.sites.c.id, t.sites.c.name, sa.func.count(t.sweeps.c.id),
                                           sa.func.min(t.sweeps.c.finished_at))
                                 .select_from(t.sites.outerjoin(t.sweeps))
                                 .group_by(t.sites.c.id, t.sites.c.name).order_by(t.sites.c.name)).all()
            for site_id, name, count, first in stats:
                newest = conn.execute(_sweep_select().where(t.sweeps.c.site_id == site_id)
                                      .order_by(t.sweeps.c.finished_at.desc(), t.sweeps.c.id.desc())
                                      .limit(1)).first()
                summaries.append(SiteSummary(str(name), int(count), first,
                                             _sweep_record(newest) if newest else None,
                                             self._baseline_row(conn, site_id)))
        return summaries

    # ---- helpers ------------------------------------------------------------------------------
    def _connect(self) -> _Guard:
        return _Guard(self, begin=False)

    def _begin(self) -> _Guard:
        return _Guard(self, begin=True)

    def _site_id(self, conn: Connection, site: str, *, create: bool = False, lock: bool = False) -> int | None:
        query = sa.select(t.sites.c.id).where(t.sites.c.name == site)
        if lock:
            query = query.with_for_update()
        found = conn.execute(query).scalar()
        if found is not None or not create:
            return None if found is None else int(found)
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(t.sites).values(name=site, created_at=time.time()))
        except IntegrityError:  # another sweep created it at the same moment
            pass
        return int(conn.execute(query).scalar_one())

    def _baseline_row(self, conn: Connection, site_id: int) -> BaselineRecord | None:
        row = conn.execute(sa.select(t.baselines, t.sites.c.name).join(t.sites)
                           .where(t.baselines.c.site_id == site_id)
                           .order_by(t.baselines.c.accepted_at.desc(), t.baselines.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        return BaselineRecord(row.id, row.name, row.sweep_id, row.accepted_at, row.note)


class _Guard:
    """A connection (or transaction) whose database errors become one-line StoreErrors."""

    def __init__(self, store: SweepStore, *, begin: bool) -> None:
        self.store = store
        self.begin = begin
        self._cm: Any = None

    def __enter__(self) -> Connection:
        try:
            self._cm = self.store.engine.begin() if self.begin else self.store.engine.connect()
            conn: Connection = self._cm.__enter__()
            if not self.begin:
                conn.execution_options(camsweep_read_only=True)  # SQLite: a plain (deferred) BEGIN
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot use database {self.store.where}: {_reason(exc)}") from exc
        return conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            self._cm.__exit__(exc_type, exc, tb)
        except SQLAlchemyError as error:
            raise StoreError(f"database {self.store.where}: {_reason(error)}") from error
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"database {self.store.where}: {_reason(exc)}") from exc


def check_site(site: str) -> str:
    name = site.strip()
    if not name or len(name) > 200 or any(ord(ch) < 32 for ch in name):
        raise UsageError(f"bad site name {site!r} (1-200 printable characters)")
    return name


def _sweep_select() -> sa.Select[Any]:
    return sa.select(*(c for c in t.sweeps.c if c.name not in ("result",)), t.sites.c.name.label("site")).join(
        t.sites, t.sites.c.id == t.sweeps.c.site_id)


def _sweep_record(row: Any) -> SweepRecord:
    try:
        targets = json.loads(row.targets)
    except ValueError:
        targets = []
    return SweepRecord(
        id=row.id, site=row.site, started_at=row.started_at, finished_at=row.finished_at, targets=list(targets),
        listen_seconds=row.listen_seconds, tool_version=row.tool_version, devices=row.devices, cameras=row.cameras,
        face_capable=row.face_capable, clouds=row.clouds, findings=row.findings, changes=row.changes,
        top_level=row.top_level, previous_sweep_id=row.previous_sweep_id)


def _engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory of {database}: {exc.strerror or exc}") from exc
        try:
            engine = sa.create_engine(url, connect_args={"timeout": 60})
        except (ArgumentError, NoSuchModuleError) as exc:
            raise UsageError(f"bad database URL {redact(url)}: {exc}") from exc

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA foreign_keys=ON")
                if database and database != ":memory:":
                    cursor.execute("PRAGMA journal_mode=WAL")  # readers (history) never block a sweep
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            read_only = conn.get_execution_options().get("camsweep_read_only")
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    try:
        return sa.create_engine(url, connect_args={"connect_timeout": 10}, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise UsageError(f"bad database URL {redact(url)}: {exc}") from exc


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's first line (no SQL, no parameters, no password)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
