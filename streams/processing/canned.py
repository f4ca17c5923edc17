"""Canned brand replies (issue 14, figure 6): an exact, pure detector. No I/O.

The rule
--------
``tokens(t)`` is the **set** of ``[a-z0-9']+`` words of the text ``t`` after, in this order:

1. lower-casing it (Python's ``str.lower``);
2. removing ``@handles`` (regex ``@\\w+``);
3. removing URLs (regex ``http\\S*``).

A brand reply R with at least 3 tokens is **canned** when an *earlier* reply of the same brand — earlier
``created_at``, or the same ``created_at`` and a smaller ``event_id`` (compared as strings) — from the
30 days before R (``created_at >= R.created_at - 30 × 86,400``), also with at least 3 tokens, has Jaccard
similarity ``|x ∩ y| / |x ∪ y| >= 0.8`` with R. The comparison is made in integers, ``5·|x ∩ y| >=
4·|x ∪ y|``, so exactly 0.8 (4 shared words of 5) counts and no float rounding can move a pair across
the threshold.

Edge cases
----------
- ``None`` or empty text has no tokens. A reply with fewer than 3 tokens is neither judged nor a
  reference for others: it is absent from :func:`canned_flags`' result.
- Tokens are a set: repeating a word changes nothing (``"ok ok ok"`` has 1 token).
- Apostrophes belong to words (``"don't"`` is one token, different from ``"dont"``); a lone ``'`` is a
  token too, as the regex says. Every other character (accents included: ``"café"`` → ``caf``)
  separates words.
- Handles and URLs are removed (replaced by nothing) before words are found, handles first:
  ``"@amy_b"`` and ``"https://t.co/x1"`` leave nothing, ``"HTTP://X"`` is a URL because the text is
  lower-cased first, ``"thanks@amy!"`` leaves ``thanks``, ``"don@x't"`` leaves ``don't``. ``\\w`` and
  ``\\S`` are Python's Unicode classes (``"@josé1"`` is one handle; an ASCII-only ``\\w``, as in RE2,
  would leave ``é1`` and so the token ``1``).
- A reply exactly 30 days before R (``R.created_at - 2,592,000``) is compared; one 30 days and 1 s before
  is not. Two replies with the same ``created_at``: the one with the smaller ``event_id`` is the earlier.
- The first reply of a template is not canned; each later one within 30 days of an earlier similar reply
  is (the earlier one need not itself be canned, nor be the first of the template).
- An ``event_id`` given twice with the same time and text is counted once; given twice with a different
  time or text it is an error (``ValueError``): a reply has one identity.

Example::

    >>> flags = canned_flags([
    ...     ("1", 0, "@amy Sorry to hear that! Please DM us your order number https://t.co/a"),
    ...     ("2", 3600, "@bob sorry to hear that, please DM us your order number https://t.co/b"),
    ...     ("3", 7200, "@cat Thanks!"),
    ... ])
    >>> flags
    {'1': False, '2': True}

(``"@cat Thanks!"`` has one token, so reply 3 is not judged.)

How: an exact set-similarity join
---------------------------------
A brute-force check compares every reply with every earlier one in its window: O(n²). Instead the replies
are sorted by ``(created_at, event_id)`` and swept once with a sliding 30-day window, indexed with
*prefix filtering* (AllPairs / PPJoin, Bayardo et al. 2007, Xiao et al. 2008):

- tokens are ranked by one global order: ascending frequency among the replies (rarest first), ties by
  the token itself;
- for Jaccard ≥ t, two sets can only qualify when ``|x ∩ y| >= t·max(|x|, |y|)``, hence when their
  *prefixes* — each set's ``|x| - ceil(t·|x|) + 1`` lowest-ranked tokens — share a token. Each reply in
  the window is indexed under its prefix tokens only (an inverted index), and a new reply looks only at
  the replies listed under its own prefix tokens;
- size filter: ``t·|x| <= |y| <= |x|/t``;
- positional filter (PPJoin): when x and y first meet at prefix positions i and j, no token before them is
  shared (the order is global), so ``|x ∩ y| <= 1 + min(|x| - i - 1, |y| - j - 1)``; a candidate that
  cannot reach ``|x ∩ y| >= ceil(4·(|x| + |y|) / 9)`` (Jaccard 0.8 in overlap terms) is dropped;
- every remaining candidate is verified exactly (``9·|x ∩ y| >= 4·(|x| + |y|)``, the same inequality as
  above), and the search stops at the first match.

The posting lists are keyed by (token, set size, position in the prefix), so the size and positional
filters choose which lists to read rather than testing entries one by one; a list holds each distinct token
set once, with its number of copies in the window, and an identical earlier set (Jaccard 1, a template sent
unchanged) is found with one dictionary look-up. The filters drop only pairs that cannot reach 0.8, so the
answer is the brute-force one (the tests compare them on random and real data, and each filter's
off-by-one changes the answer there).

Cost and memory: the input is read once into a list (to sort it and count the tokens); the index holds the
replies of the window only, each leaving it when a reply more than 30 days younger arrives. About 100,000
replies of one brand, all in one window, take 2.3-4 s in pure Python (~23-40 µs a reply; spread over a year,
less). Python's cyclic garbage collector is paused during the call: the detector builds ~10⁵ long-lived
containers and no reference cycles, and the collector's passes over them were a third of the time.
"""

from __future__ import annotations

import gc
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

WINDOW_S = 30 * 86_400
MIN_TOKENS = 3
# Jaccard threshold 0.8 as the fraction NUM/DEN; every comparison below is in integers.
_NUM, _DEN = 4, 5

_HANDLE = re.compile(r"@\w+")
_URL = re.compile(r"http\S*")
_WORD = re.compile(r"[a-z0-9']+")


def tokens(text: str | None) -> frozenset[str]:
    """The set of ``[a-z0-9']+`` words of ``text`` lower-cased, without ``@handles`` and URLs (module doc)."""
    if not text:
        return frozenset()
    text = text.lower()
    if "@" in text:
        text = _HANDLE.sub("", text)
    if "http" in text:
        text = _URL.sub("", text)
    return frozenset(_WORD.findall(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """``|a ∩ b| / |a ∪ b|``; 0.0 for two empty sets. (The detector itself compares in integers.)"""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def is_similar(a: frozenset[str], b: frozenset[str]) -> bool:
    """Jaccard(a, b) >= 0.8, exactly: ``5·|a ∩ b| >= 4·|a ∪ b|`` (False for two empty sets)."""
    inter = len(a & b)
    union = len(a) + len(b) - inter
    return union > 0 and _DEN * inter >= _NUM * union


def _prefix_length(size: int) -> int:
    """``size - ceil(0.8·size) + 1``: how many lowest-ranked tokens of a set must hold a shared token."""
    return size - (_NUM * size + _DEN - 1) // _DEN + 1


def _unique(replies: Iterable[tuple[str, int, str | None]]) -> list[tuple[str, int, str | None]]:
    seen: dict[str, tuple[str, int, str | None]] = {}
    for event_id, created_at, text in replies:
        known = seen.get(event_id)
        if known is None:
            seen[event_id] = (event_id, created_at, text)
        elif known[1] != created_at or known[2] != text:
            raise ValueError(f"event_id {event_id!r} is given twice with a different created_at or text")
    return list(seen.values())


def canned_flags(replies: Iterable[tuple[str, int, str | None]]) -> dict[str, bool]:
    """Whether each reply of ONE brand is canned (module doc), by event_id.

    ``replies``: ``(event_id, created_at unix seconds, text)`` in any order. The result has one entry per
    reply with at least 3 tokens (fewer: absent), True when the reply is canned. Exact: the same answer as
    comparing every pair; cost close to linear for real reply streams (prefix filtering, module doc).
    """
    with _collector_paused():
        return _canned_flags(replies)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a block that builds many long-lived containers but no
    reference cycles (its passes over them were a third of the detector's time), then restore its state."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _canned_flags(replies: Iterable[tuple[str, int, str | None]]) -> dict[str, bool]:
    items: list[tuple[int, str, frozenset[str]]] = []
    for event_id, created_at, text in _unique(replies):
        toks = tokens(text)
        if len(toks) >= MIN_TOKENS:
            items.append((created_at, event_id, toks))
    items.sort(key=lambda item: (item[0], item[1]))

    frequency: Counter[str] = Counter()
    for _, _, toks in items:
        frequency.update(toks)
    detector = Detector(sorted(frequency, key=lambda tok: (frequency[tok], tok)))
    judge = detector.judge_tokens
    return {event_id: judge(created_at, event_id, x) for created_at, event_id, x in items}


class Detector:
    """The sweep of :func:`canned_flags` as an object that keeps its window: replies are judged one at a time in
    ``(created_at, event_id)`` order, each against the replies of the 30 days before it that were judged before
    it (a running worker keeps one per brand and judges only the new replies, :mod:`streams.metrics.engagement`).

    Prefix filtering is exact for any fixed total order of the tokens; the rarest-first order of ``order`` makes
    it fast. A token not in ``order`` is ranked, when first seen, *before* every token ranked so far (as the
    rarest: it is, so far): no indexed set holds it, so their order stays fixed, and a template's common words
    stay out of the prefixes, which keeps the posting lists short.
    """

    #: Bits of a posting key for the set size and for the prefix position: sets of up to 2^20 tokens.
    BITS = 20
    #: Ranks of the tokens of ``order`` start here; tokens seen later get the ranks below it, downwards.
    KNOWN = 1 << 40

    def __init__(self, order: Iterable[str] = ()) -> None:
        self.rank: dict[str, int] = {tok: self.KNOWN + position for position, tok in enumerate(order)}
        self.unseen = self.KNOWN  # the rank below every rank given so far
        # The window, in time order: (created_at, tokens, posting keys) of each indexed reply.
        self.window: deque[tuple[int, frozenset[str], list[int]]] = deque()
        # (token rank, size of the reply, position of the token in the reply's ranked prefix) → {token set of a
        # reply in the window: its copies}, in the order the sets first came.
        self.postings: dict[int, dict[frozenset[str], int]] = {}
        self.latest: dict[frozenset[str], int] = {}  # token set → latest created_at among the window's replies
        self.plans: dict[int, list[list[tuple[int, int]]]] = {}  # size → per prefix position: probes
        self.last: tuple[int, str] | None = None  # (created_at, event_id) of the latest judged reply

    def judge(self, event_id: str, created_at: int, text: str | None) -> bool | None:
        """Whether this reply is canned (None: fewer than 3 tokens, not judged), then index it. Replies must come
        in ``(created_at, event_id)`` order (ValueError otherwise)."""
        x = tokens(text)
        if len(x) < MIN_TOKENS:
            return None
        return self.judge_tokens(created_at, event_id, x)

    def judge_tokens(self, created_at: int, event_id: str, x: frozenset[str]) -> bool:
        if self.last is not None and (created_at, event_id) <= self.last:
            raise ValueError(f"reply {event_id!r} at {created_at} is not after {self.last}: judge in time order")
        self.last = (created_at, event_id)
        bits = self.BITS
        postings, latest, window = self.postings, self.latest, self.window
        oldest = created_at - WINDOW_S
        while window and window[0][0] < oldest:
            old_at, old_set, old_keys = window.popleft()
            if latest.get(old_set) == old_at:  # no later reply with these tokens is left in the window
                del latest[old_set]
            for key in old_keys:
                listed = postings[key]
                copies = listed[old_set]
                if copies > 1:
                    listed[old_set] = copies - 1
                elif len(listed) > 1:
                    del listed[old_set]
                else:
                    del postings[key]

        size = len(x)
        plan = self.plans.get(size)
        if plan is None:
            plan = self.plans[size] = _probe_plan(size, bits)
        rank = self.rank
        for tok in x:
            if tok not in rank:
                self.unseen -= 1
                rank[tok] = self.unseen
        prefix = sorted(map(rank.__getitem__, x))[: len(plan)]
        # An identical earlier token set in the window (Jaccard 1) is the commonest case: one look-up.
        canned = x in latest
        if not canned:
            for token_rank, probes in zip(prefix, plan, strict=True):
                base = token_rank << 2 * bits
                for part, need in probes:
                    candidates = postings.get(base | part)
                    if candidates is not None and any(
                        # Verify, newest set first (the likeliest match), stopping at the first match:
                        # `need <= |x ∩ y|` as one lazy chain of C iterators.
                        map(need.__le__, map(len, map(x.intersection, reversed(candidates))))
                    ):
                        canned = True
                        break
                if canned:
                    break

        size_part = size << bits
        keys = [(token_rank << 2 * bits) | size_part | j for j, token_rank in enumerate(prefix)]
        window.append((created_at, x, keys))
        latest[x] = created_at
        for key in keys:
            posting = postings.get(key)
            if posting is None:
                postings[key] = {x: 1}
            else:
                posting[x] = posting.get(x, 0) + 1
        return canned


def _probe_plan(size: int, bits: int) -> list[list[tuple[int, int]]]:
    """The posting lists a reply of ``size`` tokens looks at, per position i of its prefix (whose length is
    the plan's): ``(candidate size << bits | candidate position j, overlap needed)`` for

    - each candidate size y of the size filter, ``0.8·size <= y <= size/0.8``;
    - the overlap the pair needs, ``ceil(4·(size + y) / 9)`` (Jaccard >= 4/5 ⇔ 9·|x ∩ y| >= 4·(|x| + |y|));
    - each prefix position j of the candidate that can still reach it, and only the positions i of x that
      can: first meeting at positions i and j bounds the overlap by ``1 + min(size - i - 1, y - j - 1)``
      (positional filter).
    """
    plan: list[list[tuple[int, int]]] = [[] for _ in range(_prefix_length(size))]
    for size_y in range((_NUM * size + _DEN - 1) // _DEN, _DEN * size // _NUM + 1):
        need = (4 * (size + size_y) + 8) // 9
        for i, probes in enumerate(plan):
            if size - i >= need:
                probes.extend(((size_y << bits) | j, need) for j in range(size_y - need + 1))
    return plan


def canned_flags_by_brand(rows: Iterable[tuple[str, str, int, str | None]]) -> dict[str, bool]:
    """:func:`canned_flags` of each brand, merged: rows are ``(brand, event_id, created_at, text)``.

    Replies are only compared within their brand. An event_id must belong to one brand (ValueError if not).
    """
    by_brand: dict[str, list[tuple[str, int, str | None]]] = {}
    brand_of: dict[str, str] = {}
    for brand, event_id, created_at, text in rows:
        known = brand_of.setdefault(event_id, brand)
        if known != brand:
            raise ValueError(f"event_id {event_id!r} is given for two brands, {known!r} and {brand!r}")
        by_brand.setdefault(brand, []).append((event_id, created_at, text))
    result: dict[str, bool] = {}
    for replies in by_brand.values():
        result.update(canned_flags(replies))
    return result
