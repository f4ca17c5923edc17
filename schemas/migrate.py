"""Versioned, idempotent ClickHouse migrations.

Migrations are the numbered files ``schemas/migrations/NNNN_name.sql`` (statements separated by ``;``).
``schema_migrations`` records which versions ran, with a checksum: a migration already applied is
never run again, and editing an applied migration is an error (write a new one instead). Every
statement uses ``IF NOT EXISTS`` / ``IF EXISTS``, so a migration interrupted half-way can simply run again.

A migration that uses current ClickHouse features says so with a ``-- requires: 24.8`` line. Production runs
ClickHouse 24.8 LTS or newer (and the embedded chdb is current), so every migration runs there. An older
server, which Rapport only meets in tests (Debian's 18.16, the one real server process the CI machines can
run, used for the wire protocol and server faults), gets the migrations it can run and stops before the first
it cannot: it then holds the core tables only, and the sink inserts the columns those tables have.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_REQUIRES = re.compile(r"^--\s*requires:\s*(\d+)\.(\d+)\s*$", re.MULTILINE)

LEDGER_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, checksum String, "
    "applied_at DateTime('UTC')) ENGINE = ReplacingMergeTree ORDER BY version"
)


class MigrationError(RuntimeError):
    pass


class _Executor(Protocol):
    def command(self, sql: str) -> None: ...
    def rows(self, sql: str) -> list[tuple[object, ...]]: ...


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    @property
    def requires(self) -> tuple[int, int]:
        """The oldest ClickHouse release it runs on (its ``-- requires: X.Y`` line; (0, 0) without one)."""
        match = _REQUIRES.search(self.sql)
        return (int(match.group(1)), int(match.group(2))) if match else (0, 0)

    def statements(self) -> list[str]:
        body = "\n".join(line for line in self.sql.splitlines() if not line.strip().startswith("--"))
        return [s.strip() for s in body.split(";") if s.strip()]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"bad migration file name {path.name!r}: expected NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


def server_version(warehouse: _Executor) -> tuple[int, int]:
    """The (major, minor) release of the ClickHouse behind ``warehouse``."""
    rows = warehouse.rows("SELECT version()")
    parts = str(rows[0][0]).split(".") if rows else []
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def runnable(migrations: list[Migration], version: tuple[int, int]) -> list[Migration]:
    """The migrations a server of ``version`` can run: in order, up to the first that needs a newer one."""
    out = []
    for migration in migrations:
        if migration.requires > version:
            break
        out.append(migration)
    return out


def migrate(warehouse: _Executor, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply the migrations not applied yet, in order. Returns the ones applied now."""
    migrations = load_migrations() if migrations is None else migrations
    if any(m.requires > (0, 0) for m in migrations):
        migrations = runnable(migrations, server_version(warehouse))
    warehouse.command(LEDGER_DDL)
    applied = {int(str(v)): str(c) for v, c in warehouse.rows("SELECT version, checksum FROM schema_migrations FINAL")}
    done = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} changed after it was applied; "
                    "add a new migration instead of editing an applied one"
                )
            continue
        for statement in migration.statements():
            warehouse.command(statement)
        warehouse.command(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) SELECT "
            f"{migration.version}, '{migration.name}', '{migration.checksum}', now()"
        )
        done.append(migration)
    restore_missing_tables(warehouse, migrations)
    return done


def missing_tables(warehouse: _Executor) -> list[str]:
    """Tables of the data contract that the warehouse does not have (e.g. dropped by hand)."""
    from schemas.contract import TABLES

    version = server_version(warehouse)
    expected = [t.name for t in TABLES if t.min_server <= version]  # an old server lacks the newer tables
    names = ", ".join(f"'{name}'" for name in expected)
    present = {
        str(name)
        for (name,) in warehouse.rows(
            f"SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN ({names})"
        )
    }
    return [name for name in expected if name not in present]


def restore_missing_tables(warehouse: _Executor, migrations: list[Migration]) -> list[str]:
    """Recreate contract tables that are gone although their migration is recorded as applied.

    The ledger says what ran, not what still exists: a table dropped by hand would otherwise stay missing
    while ``rapport migrate`` says "up to date" and the sink fails on every insert. Every statement is
    idempotent (``IF NOT EXISTS``), so running the applied migrations again recreates exactly what is
    missing and leaves the rest alone. Returns the tables recreated."""
    missing = missing_tables(warehouse)
    if not missing:
        return []
    for migration in migrations:
        for statement in migration.statements():
            warehouse.command(statement)
    still = missing_tables(warehouse)
    if still:
        raise MigrationError(f"tables {', '.join(still)} are missing and no migration creates them")
    return missing
