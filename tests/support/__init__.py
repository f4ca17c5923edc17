"""Helpers shared by the tests (e.g. a throwaway ClickHouse server process)."""
