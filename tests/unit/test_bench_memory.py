"""The memory benchmark's pure parts: the generated events and the /proc readers (no worker, no timing)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from schemas.interaction import Interaction
from streams.bench.memory import (
    MemorySample,
    MemorySampler,
    descendants,
    generate_lines,
    parse_ppid,
    parse_status,
    read_memory,
    write_interactions,
)

STATUS = """\
Name:\tpython
Umask:\t0022
State:\tS (sleeping)
Pid:\t4242
PPid:\t1
VmPeak:\t 2113604 kB
VmSize:\t 2047304 kB
VmHWM:\t  731212 kB
VmRSS:\t  512004 kB
RssAnon:\t  301000 kB
RssFile:\t  210000 kB
RssShmem:\t    1004 kB
Threads:\t12
voluntary_ctxt_switches:\t150
"""


def test_write_interactions_one_valid_inbound_event_per_distinct_customer(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    assert write_interactions(path, 1000, brands=20, reply_fraction=0.1) == 1100
    lines = path.read_bytes().splitlines()
    assert len(lines) == 1100
    events = [Interaction.model_validate_json(line) for line in lines]
    inbound = [e for e in events if e.direction == "inbound"]
    replies = [e for e in events if e.direction == "outbound"]
    assert len(inbound) == 1000
    assert len({e.author_id for e in inbound}) == 1000
    assert len({(e.brand, e.customer) for e in inbound}) == 1000
    assert len({e.brand for e in inbound}) == 20
    assert len({e.event_id for e in events}) == 1100
    inbound_ids = {e.event_id: e for e in inbound}
    for reply in replies:  # a brand reply answers one of its own brand's customers, later
        parent = inbound_ids[reply.parent_id or ""]
        assert reply.brand == parent.brand and reply.customer == parent.author_id
        assert reply.created_at > parent.created_at
    assert all(e.is_conversational for e in events)


def test_generate_lines_without_replies_and_empty() -> None:
    lines = list(generate_lines(50, brands=3, reply_fraction=0.0))
    assert len(lines) == 50
    assert {orjson.loads(line)["brand"] for line in lines} == {"brand0", "brand1", "brand2"}
    assert list(generate_lines(0)) == []
    assert len(list(generate_lines(10, reply_fraction=1.0))) == 20


def test_parse_status_reads_kb_fields_in_bytes() -> None:
    fields = parse_status(STATUS)
    assert fields["VmRSS"] == 512004 * 1024
    assert fields["VmHWM"] == 731212 * 1024
    assert fields["RssAnon"] == 301000 * 1024
    assert fields["RssFile"] == 210000 * 1024
    assert "Threads" not in fields and "Name" not in fields
    assert parse_status("") == {}


def test_parse_ppid_with_spaces_and_parens_in_the_command_name() -> None:
    assert parse_ppid("4242 (python) S 17 4242 4242 0 -1") == 17
    assert parse_ppid("4243 (a (weird) name) R 4242 1 1 0 -1") == 4242


def test_read_memory_of_this_process() -> None:
    sample = read_memory(os.getpid(), children=False)
    assert 0 < sample.rss <= sample.hwm
    assert sample.total_rss == sample.rss
    assert isinstance(descendants(os.getpid()), list)


def test_marginal_bytes_per_record_leaves_the_warm_up_out() -> None:
    sampler = MemorySampler(pid=0)
    mib = 1024 * 1024
    # 100 MiB of warm-up at the start, then 1 KiB per record
    sampler.samples = [
        MemorySample(at=0, rss=300 * mib, hwm=300 * mib, anon=0, file=0, processed=0),
        MemorySample(at=1, rss=400 * mib, hwm=400 * mib, anon=0, file=0, processed=1),
        *(
            MemorySample(at=2 + i, rss=400 * mib + n * 1024, hwm=0, anon=0, file=0, processed=n)
            for i, n in enumerate(range(1000, 10_001, 1000))
        ),
    ]
    assert sampler.marginal_bytes_per_record() == 1024
    assert sampler.peak_rss == 400 * mib + 10_000 * 1024
    assert MemorySampler(pid=0).marginal_bytes_per_record() is None
