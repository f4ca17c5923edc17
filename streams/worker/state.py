"""The process agent's keyed state: Faust tables, read by partition, written once per batch.

The three tables (customer history, reply threads, conversation roots) are ordinary Faust tables
with raw bytes keys and orjson values, so Faust creates their compacted changelog topics, recovers
them at start and on rebalance (``streams/kafka/changelog.py`` makes that recovery complete on tansu), and
keeps them in memory or RocksDB. What Rapport does differently is *how it writes them*:

1. While a batch of raw messages is processed, writes go to a :class:`BatchState` overlay; reads
   look at the overlay, then at the table's store for the message's partition.
2. After the batch, each written key is sent **once** to its changelog partition, packed into record
   batches (:meth:`streams.kafka.producer.Producer.send_records`), instead of one Faust ``send_soon`` per
   write (one changelog message per write, in an unbounded buffer).
3. Once the broker acknowledged them, the records are applied to the stores through the stores' own
   ``apply_changelog_batch``: the code path of recovery, so the local state is, by construction, what
   the changelog says. Only then is the input acknowledged; a worker killed before that point
   reprocesses the batch, and the state functions are idempotent per event id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import orjson
from faust.types import TP

from streams.processing.pipeline import STATE_TABLES

#: Keys Faust itself writes into a RocksDB store (the last applied changelog offset): not table data.
FAUST_KEYS = b"__faust\x00"


class Change(NamedTuple):
    """A changelog record as ``Store.apply_changelog_batch`` reads it (the shape of a Faust event).
    A tuple: one is made per written key, so it must be cheap to build."""

    key: bytes
    value: bytes | None
    partition: int
    tp: TP
    offset: int

    @property
    def message(self) -> Change:
        return self


def _same(value: Any) -> Any:
    return value


class TableStore:
    """Reads and applies the tables' stored bytes by partition, for Faust's memory and RocksDB stores."""

    def __init__(self, tables: Mapping[str, Any]) -> None:
        self.tables = tables

    def changelog_topic(self, table: str) -> str:
        return str(self.tables[table].changelog_topic.get_topic_name())

    def read(self, table: str, partition: int, key: str) -> Any:
        store = self.tables[table].data
        raw = (
            store._db_for_partition(partition).get(key.encode())  # RocksDB: one database per partition
            if hasattr(store, "_db_for_partition")
            else store.data.get(key.encode())  # memory: one dict
        )
        return None if raw is None else orjson.loads(raw)

    def apply(self, table: str, partition: int, records: Iterable[tuple[bytes, bytes | None, int]]) -> None:
        """Write acknowledged changelog records (key, value, offset) to the table's store."""
        tp = TP(self.changelog_topic(table), partition)
        changes = [Change(key, value, partition, tp, offset) for key, value, offset in records]
        self.tables[table].data.apply_changelog_batch(changes, to_key=_same, to_value=_same)

    def items(self, table: str) -> list[tuple[str, Any]]:
        """Every stored (key, value) of a table, in the partitions this worker holds (its timers use it)."""
        store = self.tables[table].data
        dbs = store._dbs.values() if hasattr(store, "_dbs") else [store.data]
        out = []
        for db in dbs:
            items = db.iteritems() if hasattr(db, "iteritems") else db.items()
            if hasattr(items, "seek_to_first"):
                items.seek_to_first()
            for key, raw in items:
                if raw is not None and not key.startswith(FAUST_KEYS):  # RocksDB keeps Faust's offset beside
                    out.append((key.decode("utf-8", errors="replace"), orjson.loads(raw)))
        return out

    def value(self, table: str, key: str) -> Any:
        """The stored value of ``key`` in whichever partition holds it (tests, operators)."""
        store = self.tables[table].data
        dbs = store._dbs.values() if hasattr(store, "_dbs") else [store.data]
        for db in dbs:
            raw = db.get(key.encode())
            if raw is not None:
                return orjson.loads(raw)
        return None


class BatchState:
    """``State`` for one batch of raw messages: buffered writes over the stored tables.

    ``begin(partition)`` starts a message; ``commit()`` keeps its writes, ``rollback()`` drops them (a
    message that failed half-way leaves no trace). ``changes()`` gives, per (table, partition), every
    key written in the batch with its last value: one changelog record per key per batch."""

    def __init__(self, store: TableStore) -> None:
        self.store = store
        self.partition = 0
        self._batch: dict[tuple[str, str], tuple[int, Any]] = {}
        self._message: dict[tuple[str, str], tuple[int, Any]] = {}

    def begin(self, partition: int) -> None:
        self.partition = partition
        self._message = {}

    def get(self, table: str, key: str) -> Any:
        hit = self._message.get((table, key)) or self._batch.get((table, key))
        if hit is not None:
            return hit[1]
        return self.store.read(table, self.partition, key)

    def set(self, table: str, key: str, value: Any) -> None:
        self._message[(table, key)] = (self.partition, value)

    def commit(self) -> None:
        self._batch.update(self._message)
        self._message = {}

    def rollback(self) -> None:
        self._message = {}

    def changes(self) -> dict[tuple[str, int], list[tuple[bytes, bytes]]]:
        out: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        for (table, key), (partition, value) in self._batch.items():
            out.setdefault((table, partition), []).append((key.encode(), orjson.dumps(value)))
        return out


__all__ = ["STATE_TABLES", "BatchState", "Change", "TableStore"]
