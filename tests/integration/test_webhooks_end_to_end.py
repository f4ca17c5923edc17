"""Webhooks end to end on real components: signed payloads over HTTP to a running worker (its Faust web
server), through the tansu broker, into chdb. Badly signed ones produce nothing; redeliveries count once."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import orjson
import pytest

from streams.processing.platforms import BrandDirectory, events, meta, x
from tests.support.worker import WorkerProcess, http

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
X_SECRET, META_SECRET, TOKEN = "x-secret-new", "meta-secret", "events-token"
PARSERS = {"x": x.parse, "meta": meta.parse, "events": events.parse}


def signed(kind: str, body: bytes, good: bool = True) -> dict[str, str]:
    import base64

    secret = (X_SECRET if kind == "x" else META_SECRET) if good else "wrong"
    mac = hmac.new(secret.encode(), body, hashlib.sha256)
    if kind == "x":
        return {"x-twitter-webhooks-signature": "sha256=" + base64.b64encode(mac.digest()).decode()}
    if kind == "meta":
        return {"X-Hub-Signature-256": "sha256=" + mac.hexdigest()}
    return {"Authorization": f"Bearer {TOKEN if good else 'wrong'}"}


def post(base: str, kind: str, body: bytes, headers: dict[str, str]) -> int:
    return http(f"{base}/webhooks/{kind}", body, {"Content-Type": "application/json", **headers})[0]


def fixtures() -> list[tuple[str, Path]]:
    return [(kind, path) for kind in ("x", "meta", "events") for path in sorted((FIXTURES / kind).glob("*.json"))]


def rows(worker: WorkerProcess, sql: str) -> list[dict]:
    return [orjson.loads(line) for line in worker.sql(sql, "JSONEachRow").splitlines()]


def test_signed_webhooks_land_as_rows_and_unsigned_ones_produce_nothing(worker):
    brands_file = FIXTURES / "brands.yaml"
    running = worker(
        brands_file=brands_file,
        x_consumer_secret=f"{X_SECRET},x-secret-old",
        meta_app_secret=META_SECRET,
        meta_verify_token="verify",
        events_token=TOKEN,
    )
    try:
        # badly signed first: nothing may come of them
        for kind, path in fixtures():
            assert post(running.base_url, kind, path.read_bytes(), signed(kind, path.read_bytes(), good=False)) == 401
        assert running.progress()["edge_messages"] == 0

        directory = BrandDirectory.from_file(brands_file)
        edited = orjson.loads((FIXTURES / "meta" / "page_feed_comment_edited.json").read_bytes())
        value = edited["entry"][0]["changes"][0]["value"]
        comment_id = f"facebook:{value['comment_id']}"
        removals = [  # the deliveries that remove that comment (Meta's, and a canonical one)
            (kind, path)
            for kind, path in fixtures()
            if any(
                p.ok and p.result.deleted and p.result.event_id == comment_id  # type: ignore[union-attr]
                for p in PARSERS[kind](path.read_bytes(), directory)
            )
        ]
        assert removals
        for kind, path in fixtures():
            if (kind, path) not in removals:
                assert post(running.base_url, kind, path.read_bytes(), signed(kind, path.read_bytes())) == 200, path
        running.wait_drained(0, timeout=60)
        # the comment was added then edited: the edit's text is the one that counts
        [comment] = rows(running, f"SELECT text, deleted FROM interactions FINAL WHERE event_id = '{comment_id}'")
        assert comment == {"text": value["message"], "deleted": 0}

        # then removed: the text is gone, the event stays, marked deleted
        for kind, path in removals:
            assert post(running.base_url, kind, path.read_bytes(), signed(kind, path.read_bytes())) == 200
        running.wait_drained(0, timeout=60)

        # what the parsers say each body holds (verified field by field in tests/unit/test_platforms.py)
        parsed = [p for kind, path in fixtures() for p in PARSERS[kind](path.read_bytes(), directory)]
        expected_ids = {p.result.event_id for p in parsed if p.ok}  # type: ignore[union-attr]
        stored = {r["event_id"]: r for r in rows(running, "SELECT * FROM interactions FINAL")}
        assert set(stored) == expected_ids
        letters = rows(running, "SELECT reason, format FROM dead_letters FINAL")
        assert len(letters) == len({(p.brand, p.original) for p in parsed if not p.ok}) > 0

        # by hand: a mention from a customer to the brand on X
        mention = next(r for r in stored.values() if r["platform"] == "x" and r["kind"] == "mention")
        assert (mention["brand"], mention["direction"]) == ("acme", "inbound")
        assert mention["author_followers"] is not None and mention["sentiment"] is not None
        assert (stored[comment_id]["deleted"], stored[comment_id]["text"]) == (1, None)
        # reactions, shares and follows are there as reach signals, never as responses
        vanity = {r["event_id"] for r in stored.values() if r["kind"] in ("reaction", "share", "follow")}
        assert vanity
        answered = rows(running, "SELECT inbound_id, reply_id FROM responses FINAL")
        assert not vanity & {a["reply_id"] for a in answered} and not vanity & {a["inbound_id"] for a in answered}

        # the platforms redeliver everything (and sign with the old secret after a rotation): counted once
        before = running.sql("SELECT count(), sum(deleted) FROM interactions FINAL")
        for kind, path in fixtures():
            body = path.read_bytes()
            headers = signed(kind, body)
            if kind == "x":
                import base64

                mac = hmac.new(b"x-secret-old", body, hashlib.sha256).digest()
                headers = {"x-twitter-webhooks-signature": "sha256=" + base64.b64encode(mac).decode()}
            assert post(running.base_url, kind, body, headers) == 200
        running.wait_drained(0, timeout=60)
        assert running.sql("SELECT count(), sum(deleted) FROM interactions FINAL") == before
        # the original "add", redelivered after the removal, does not bring the text back
        [comment] = rows(running, f"SELECT text, deleted FROM interactions FINAL WHERE event_id = '{comment_id}'")
        assert comment == {"text": None, "deleted": 1}
        assert len(rows(running, "SELECT reason FROM dead_letters FINAL")) == len(letters)
    finally:
        assert running.stop() == 0
