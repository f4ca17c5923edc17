"""Where enriched events go: ClickHouse, embedded (chdb) or a server (``warehouse``)."""
