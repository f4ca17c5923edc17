"""Canned brand replies (issue 14, figure 6): the rule on hand-made cases, and the fast detector against brute force."""

from __future__ import annotations

import csv
import doctest
import gc
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import pytest

from streams.processing import canned
from streams.processing.canned import (
    WINDOW_S,
    Detector,
    canned_flags,
    canned_flags_by_brand,
    is_similar,
    jaccard,
    tokens,
)

TWCS_SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "twcs" / "twcs_head5000.csv"
DAY = 86_400


def brute_force(replies: Sequence[tuple[str, int, str | None]]) -> dict[str, bool]:
    """The rule as written, pair by pair (O(n²)), with the similarity as an exact fraction."""
    judged = [(created_at, event_id, tokens(text)) for event_id, created_at, text in replies]
    judged = [item for item in judged if len(item[2]) >= 3]
    result = {}
    for created_at, event_id, x in judged:
        result[event_id] = any(
            (other_at, other_id) < (created_at, event_id)
            and other_at >= created_at - 30 * DAY
            and Fraction(len(x & y), len(x | y)) >= Fraction(4, 5)
            for other_at, other_id, y in judged
        )
    return result


def brute_force_sorted(replies: Sequence[tuple[str, int, str | None]]) -> dict[str, bool]:
    """Same rule, scanning only the earlier replies of each window, in integers (for the larger comparisons)."""
    judged = sorted(
        (created_at, event_id, toks) for event_id, created_at, text in replies if len(toks := tokens(text)) >= 3
    )
    result = {}
    start = 0
    for index, (created_at, event_id, x) in enumerate(judged):
        while judged[start][0] < created_at - 30 * DAY:
            start += 1
        result[event_id] = any(5 * len(x & y) >= 4 * len(x | y) for _, _, y in judged[start:index])
    return result


# --- tokens and similarity -------------------------------------------------------------------------------


def test_tokens_lower_cases_then_drops_handles_and_urls() -> None:
    assert tokens("@AmyB Sorry to hear that! See https://t.co/X1y2 or HTTP://Example.com/A") == {
        "sorry",
        "to",
        "hear",
        "that",
        "see",
        "or",
    }
    assert tokens("thanks@amy!") == {"thanks"}  # a handle inside a word is removed, not split on
    assert tokens("abc@xhttp://y def") == {"abc", "y", "def"}  # handles first: @xhttp is the handle
    assert tokens("see:http://x.co, ok") == {"see", "ok"}


def test_tokens_are_a_set_and_keep_apostrophes() -> None:
    assert tokens("Don't worry, we DON'T mind don't") == {"don't", "worry", "we", "mind"}
    assert tokens("dont") != tokens("don't")
    assert tokens("ok ok ok") == {"ok"}
    assert tokens("café 42nd") == {"caf", "42nd"}
    assert tokens("'") == {"'"}


@pytest.mark.parametrize("text", [None, "", "   ", "@amy", "https://t.co/x", "!!! ...", "@a @b http://c"])
def test_no_tokens(text: str | None) -> None:
    assert tokens(text) == frozenset()


def test_jaccard_and_the_exact_threshold() -> None:
    four_of_five = (frozenset("abcd"), frozenset("abcde"))
    assert jaccard(*four_of_five) == 0.8
    assert is_similar(*four_of_five)
    just_below = (frozenset("abcdefghijklmnoXY"), frozenset("abcdefghijklmnoZW"))  # 15 / 19
    assert jaccard(*just_below) == pytest.approx(0.789, abs=1e-3)
    assert not is_similar(*just_below)
    assert jaccard(frozenset(), frozenset()) == 0.0
    assert not is_similar(frozenset(), frozenset())


# --- the rule on hand-made replies ------------------------------------------------------------------------


def test_a_template_with_other_handles_and_urls_is_canned_after_its_first_use() -> None:
    replies = [
        ("a1", 1_000, "@amy Sorry to hear that! Please DM us your order number https://t.co/aaa"),
        ("a2", 2_000, "@bob sorry to hear that. please dm us your order number https://t.co/bbb"),
        ("a3", 3_000, "@cat Please DM us your order number, sorry to hear that! http://x.co/c ^JS"),
        ("a4", 4_000, "@dan Our store opens at nine tomorrow morning."),
    ]
    assert canned_flags(replies) == {"a1": False, "a2": True, "a3": True, "a4": False}
    # The input order does not matter: the first by time is the original.
    assert canned_flags(reversed(replies)) == canned_flags(replies)


def test_exactly_four_fifths_counts_and_just_below_does_not() -> None:
    assert canned_flags([("1", 0, "alpha beta gamma delta"), ("2", 10, "alpha beta gamma delta epsilon")]) == {
        "1": False,
        "2": True,
    }
    shared = " ".join(f"w{i}" for i in range(15))
    assert canned_flags([("1", 0, f"{shared} x1 x2"), ("2", 10, f"{shared} y1 y2")]) == {"1": False, "2": False}


def test_the_window_is_thirty_days_inclusive() -> None:
    text = "thanks for reaching out to us today"
    assert canned_flags([("1", 0, text), ("2", WINDOW_S, text)]) == {"1": False, "2": True}
    assert canned_flags([("1", 0, text), ("2", WINDOW_S + 1, text)]) == {"1": False, "2": False}
    # A chain: each reply is within 30 days of the previous one, so each is canned, though the third is
    # 40 days after the first.
    assert canned_flags([("1", 0, text), ("2", 20 * DAY, text), ("3", 40 * DAY, text)]) == {
        "1": False,
        "2": True,
        "3": True,
    }


def test_ties_on_created_at_are_broken_by_event_id_as_strings() -> None:
    text = "we are looking into it right now"
    # "10" < "9" as strings: 10 is the earlier reply.
    assert canned_flags([("9", 500, text), ("10", 500, text)]) == {"10": False, "9": True}
    assert canned_flags([("b", 500, text), ("a", 500, text), ("c", 499, text)]) == {
        "c": False,
        "a": True,
        "b": True,
    }


def test_replies_with_fewer_than_three_tokens_are_left_out() -> None:
    flags = canned_flags(
        [
            ("1", 0, "@amy Thanks!"),
            ("2", 1, "@bob Thanks!"),
            ("3", 2, "thank you https://t.co/abc"),
            ("4", 3, None),
            ("5", 4, "ok ok ok ok"),
            ("6", 5, "thank you so"),
            ("7", 6, "thank you so"),
        ]
    )
    assert flags == {"6": False, "7": True}


def test_apostrophes_make_other_words() -> None:
    flags = canned_flags([("1", 0, "we don't know why yet"), ("2", 1, "we dont know why yet")])
    assert flags == {"1": False, "2": False}  # 4 shared of 6
    flags = canned_flags([("1", 0, "we don't know why yet"), ("2", 1, "We DON'T know why yet!")])
    assert flags == {"1": False, "2": True}


def test_duplicates_and_brands() -> None:
    text = "please follow and dm us the details"
    assert canned_flags([("1", 0, text), ("1", 0, text)]) == {"1": False}  # a redelivery counts once
    with pytest.raises(ValueError, match="given twice"):
        canned_flags([("1", 0, text), ("1", 5, text)])
    rows = [("acme", "1", 0, text), ("globex", "2", 10, text), ("acme", "3", 20, text)]
    assert canned_flags_by_brand(rows) == {"1": False, "2": False, "3": True}  # never across brands
    with pytest.raises(ValueError, match="two brands"):
        canned_flags_by_brand([("acme", "1", 0, text), ("globex", "1", 0, text)])


def test_hand_made_cases_agree_with_brute_force() -> None:
    replies = [
        ("1", 0, "alpha beta gamma delta"),
        ("2", 10, "alpha beta gamma delta epsilon"),
        ("3", 10, "beta gamma delta epsilon zeta"),
        ("4", WINDOW_S + 10, "beta gamma delta epsilon zeta eta"),  # exactly 30 days after 2 and 3
        ("5", WINDOW_S + 10, "alpha beta"),
    ]
    assert canned_flags(replies) == brute_force(replies) == {"1": False, "2": True, "3": False, "4": True}


def test_the_module_example_holds_and_the_collector_is_restored() -> None:
    assert doctest.testmod(canned, optionflags=doctest.ELLIPSIS).failed == 0
    text = "we will look into this for you"
    assert gc.isenabled()
    canned_flags([("1", 0, text)])
    assert gc.isenabled()
    gc.disable()
    try:
        canned_flags([("1", 0, text)])
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- randomized: the same answer as brute force ---------------------------------------------------------


def generated_replies(seed: int, count: int) -> list[tuple[str, int, str | None]]:
    """Replies of one brand: templates used with small edits, reorderings, handles and URLs, plus free text."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(400)] + ["don't", "we're", "'", "it's", "dont"]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]  # Zipf-like: a few very common words

    def words(k: int) -> list[str]:
        return rng.choices(vocabulary, weights, k=k)

    templates = [words(rng.choice([3, 4, 5, 5, 6, 8, 10, 10, 12, 15, 20, 25])) for _ in range(40)]
    replies: list[tuple[str, int, str | None]] = []
    at = 0
    for index in range(count):
        at += rng.choice([0, 0, 1, 60, 600, 3_600, 7_200, 4 * 3_600])  # ties are frequent
        if rng.random() < 0.65:
            text = list(rng.choice(templates))
            for _ in range(rng.choice([0, 0, 1, 1, 1, 2, 3])):
                edit = rng.random()
                if edit < 0.35 and text:
                    text.pop(rng.randrange(len(text)))
                elif edit < 0.7:
                    text.insert(rng.randrange(len(text) + 1), rng.choice(vocabulary))
                elif text:
                    text[rng.randrange(len(text))] = rng.choice(vocabulary)
            if rng.random() < 0.3:
                rng.shuffle(text)
            if rng.random() < 0.2:
                text.append(rng.choice(text or ["w1"]))  # a repeated word changes nothing
        else:
            text = words(rng.randint(1, 18))
        if rng.random() < 0.3:
            text = [word.upper() if rng.random() < 0.5 else word for word in text]
        decorated = [f"@user{rng.randrange(10**6)}", *text]
        if rng.random() < 0.4:
            decorated.append(f"https://t.co/{rng.randrange(10**9):x}")
        if rng.random() < 0.2:
            decorated.append(f"^{rng.choice(['JS', 'AB', 'MK'])}")
        # Unique, of varied lengths: their string order is neither the time order nor the numeric order.
        event_id = f"{rng.randrange(10 ** rng.randint(1, 7))}-{index}"
        replies.append((event_id, at, " ".join(decorated) if rng.random() > 0.01 else None))
        if replies and rng.random() < 0.03:  # the window's edge: an earlier reply again, 30 days (+ 0 or 1 s) on
            _, earlier_at, earlier_text = rng.choice(replies)
            replies.append((f"edge-{index}", earlier_at + WINDOW_S + rng.choice([0, 1]), earlier_text))
        if rng.random() < 0.03:  # a tie: the same text at the same second, under an id that may sort first
            replies.append((f"{rng.randrange(10 ** rng.randint(1, 7))}-tie-{index}", at, replies[-1][2]))
    rng.shuffle(replies)
    return replies


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_randomized_replies_agree_with_brute_force(seed: int) -> None:
    replies = generated_replies(seed, 2_500)
    expected = brute_force_sorted(replies)
    assert canned_flags(replies) == expected
    assert 0.2 < sum(expected.values()) / len(expected) < 0.9  # both outcomes are well represented


@pytest.mark.parametrize("seed", [4, 5])
def test_a_detector_fed_one_reply_at_a_time_without_an_order_agrees_with_brute_force(seed: int) -> None:
    """What a running worker does (streams/metrics/engagement.py, CannedCache): no token frequencies known in
    advance, every token ranked when first seen, replies judged one by one in time order."""
    replies = generated_replies(seed, 2_500)
    expected = brute_force_sorted(replies)
    detector = Detector()
    judged = {}
    for event_id, at, text in sorted(set(replies), key=lambda r: (r[1], r[0])):
        flag = detector.judge(event_id, at, text)
        if flag is not None:
            judged[event_id] = flag
    assert judged == expected
    with pytest.raises(ValueError, match="time order"):
        detector.judge("0", 0, "one two three four")


def test_brute_force_references_agree() -> None:
    replies = generated_replies(7, 400)
    assert brute_force(replies) == brute_force_sorted(replies) == canned_flags(replies)


# --- the real twcs sample -------------------------------------------------------------------------------


def test_twcs_sample_agrees_with_brute_force_per_brand() -> None:
    if not TWCS_SAMPLE.exists():
        pytest.skip(f"the twcs sample is not at {TWCS_SAMPLE} (it is shared data, not part of the repository)")
    by_brand: dict[str, list[tuple[str, int, str | None]]] = defaultdict(list)
    rows = []
    with TWCS_SAMPLE.open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            if record["inbound"] != "False":
                continue
            created_at = int(datetime.strptime(record["created_at"], "%a %b %d %H:%M:%S %z %Y").timestamp())
            by_brand[record["author_id"]].append((record["tweet_id"], created_at, record["text"]))
            rows.append((record["author_id"], record["tweet_id"], created_at, record["text"]))
    assert len(by_brand) > 10
    merged: dict[str, bool] = {}
    for replies in by_brand.values():
        flags = canned_flags(replies)
        assert flags == brute_force(replies)
        merged.update(flags)
    assert canned_flags_by_brand(rows) == merged
    assert any(merged.values())  # the sample has canned replies
