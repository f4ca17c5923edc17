"""The one settings object. Every knob is a ``RAPPORT_*`` environment variable; nothing else in the
code base reads ``os.environ`` for configuration. Build it once (``Settings()``) and pass it down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAPPORT_", frozen=True, extra="ignore")

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Field(default=Path(".rapport"), description="Local state: chdb data, worker tables.")
    kafka_brokers: str = Field(default="127.0.0.1:9092", description="Comma-separated bootstrap servers.")
    kafka_connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for the broker before giving up with exit code 4."
    )
    clickhouse_url: str = Field(
        default="",
        description="chdb://PATH (embedded) or clickhouse://HOST:PORT/DB[?http_port=8123] (server: native protocol, "
        "and its HTTP port for text results). Empty: chdb under DATA_DIR/clickhouse.",
    )

    # --- topics --------------------------------------------------------------------------------
    topic_raw: str = "rapport.raw"
    topic_enriched: str = "rapport.enriched"
    topic_dead_letter: str = "rapport.dead-letter"
    topic_sla_breaches: str = Field(
        default="rapport.sla-breaches", description="SLA breach events (JSON, key = brand), for alerting consumers."
    )
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)

    # --- worker --------------------------------------------------------------------------------
    app_id: str = "rapport"
    worker_role: Literal["all", "edge", "process"] = Field(
        default="all",
        description="all: webhooks + processing; edge: only the webhook edge (scale intake separately); "
        "process: only the agents.",
    )
    web_host: str = Field(
        default="127.0.0.1",
        description="Public listener (webhooks and /health/*; nothing else). Production binds it to a public address.",
    )
    web_port: int = Field(default=6066, ge=0, le=65535)
    admin_host: str = Field(
        default="127.0.0.1", description="Admin listener (SQL, progress, metrics): loopback unless you need otherwise."
    )
    admin_port: int = Field(default=6067, ge=0, le=65535, description="Admin listener port (0: any free port).")
    admin_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token of the admin listener. Empty: generated once into DATA_DIR/admin-token (0600).",
    )
    admin_query_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="Longest run of one admin SQL query (it shares chdb with the sink)."
    )
    admin_query_max_bytes: int = Field(
        default=1 << 30, ge=1 << 20, description="Memory limit of one admin SQL query, in bytes."
    )
    admin_result_max_bytes: int = Field(
        default=64 << 20, ge=1024, description="Largest result of one admin SQL query, in bytes."
    )
    stop_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Longest graceful stop of a worker; then it exits non-zero saying what is stuck.",
    )
    kafka_retry_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long retriable Kafka errors (leader elections, time-outs) are retried before the worker "
        "gives up and exits non-zero.",
    )
    table_store: str = Field(default="memory://", description="Faust table store: memory:// or rocksdb://")
    broker_session_timeout: float = Field(default=6.0, gt=0)
    process_batch_messages: int = Field(
        default=64, ge=1, description="Raw messages processed together (state written once per key per batch)."
    )
    process_batch_seconds: float = Field(default=0.05, gt=0, description="Max wait to fill a process batch.")
    fetch_max_wait_ms: int = Field(
        default=100, ge=1, description="Longest wait of a consumer fetch for data (tansu waits it out)."
    )

    sla_tick_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often live brands (latest event within the last hour) get a wall-clock tick, so their SLA "
        "deadlines pass even when they go quiet.",
    )

    # --- sink ----------------------------------------------------------------------------------
    sink_batch_size: int = Field(default=5000, ge=1, description="Max events per ClickHouse insert.")
    sink_batch_seconds: float = Field(default=0.5, gt=0, description="Max wait before an insert.")
    sink_retry_seconds: float = Field(default=2.0, gt=0, description="Back-off when the warehouse fails.")
    aggregate_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often the aggregates' changed hours are recomputed from FINAL rows (how far care_hourly "
        "may lag the rows).",
    )

    # --- webhooks (each secret/token setting is a comma-separated list, for rotation) -------------------
    # SecretStr: never printed, logged or shown in errors; read them with ``secret_list``
    x_consumer_secret: SecretStr = Field(
        default=SecretStr(""), description="X consumer secret(s); the first answers CRC checks."
    )
    meta_app_secret: SecretStr = Field(default=SecretStr(""), description="Meta app secret(s) for X-Hub-Signature-256.")
    meta_verify_token: SecretStr = Field(default=SecretStr(""), description="Meta subscription verify token(s).")
    events_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token(s) of the canonical /webhooks/events."
    )
    brands_file: Path | None = Field(default=None, description="YAML/JSON: brand → platform → account ids.")
    webhook_max_bytes: int = Field(default=1024 * 1024, ge=1, description="Largest webhook body accepted (413).")
    webhook_read_timeout: float = Field(
        default=10.0, gt=0, description="Longest time to receive one webhook request's body (408 after it)."
    )

    # --- the local stack (rapport up) -----------------------------------------------------------
    drain_stall_seconds: float = Field(
        default=60.0,
        gt=0,
        description="rapport up: when draining makes no progress for this long, say what is stuck and exit 1.",
    )

    # --- replay --------------------------------------------------------------------------------
    replay_chunk_records: int = Field(default=200, ge=1, description="Records per raw Kafka message.")

    # --- enrichment ----------------------------------------------------------------------------
    history_max_events: int = Field(
        default=500, ge=1, description="Events remembered per (brand, customer) for history counts."
    )

    @field_validator("kafka_brokers")
    @classmethod
    def _brokers(cls, value: str) -> str:
        if not [b for b in value.split(",") if b.strip()]:
            raise ValueError("needs at least one host:port")
        return value

    @staticmethod
    def split(value: str) -> list[str]:
        return [item.strip() for item in value.split(",") if item.strip()]

    def secret_list(self, name: str) -> list[str]:
        """The comma-separated values of the secret setting ``name`` (e.g. ``"x_consumer_secret"``)."""
        value = getattr(self, name)
        return self.split(value.get_secret_value() if isinstance(value, SecretStr) else value)

    @property
    def broker_list(self) -> list[str]:
        return self.split(self.kafka_brokers)

    @property
    def sink_batch_messages(self) -> int:
        """Enriched (or dead-letter) messages a sink takes at once: about ``sink_batch_size`` rows, at one
        raw message's worth of rows (``replay_chunk_records``) per message."""
        return max(1, self.sink_batch_size // self.replay_chunk_records)

    @property
    def warehouse_url(self) -> str:
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"
