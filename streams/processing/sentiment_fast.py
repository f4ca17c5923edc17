"""VADER 3.3.2's compound score, computed faster with the same result (compiled with mypyc).

``FastVader().compound(text)`` equals ``SentimentIntensityAnalyzer().polarity_scores(text)["compound"]``
of ``vaderSentiment`` 3.3.2 on every text (tests: ``tests/unit/test_sentiment_fast.py``). It reads the
lexicons shipped in the ``vaderSentiment`` package, uses its constants and applies the same rules in the
same order with the same floating point operations. Where the time goes differs:

- emoji: the reference rebuilds every text one character at a time; here only texts with a character
  that can be an emoji are touched, with one ``str.replace`` per emoji present;
- words: the whole text is lower-cased once; the reference lower-cases the whole token list again for
  every preceding word it inspects (``_negation_check``, ``_special_idioms_check``: O(n²) per text);
- rules: one pass over the tokens looks each up once in a table of flags (lexicon word, rule word, idiom
  end, "but"…); only the lexicon words get a sentiment (every other token has sentiment 0, which adds
  nothing), and one with no rule-relevant word before it (the flags of the 3 previous tokens) takes its
  lexicon valence straight away; the others go through ``FastVader._sentiment_valence``;
- capitals (``allcap_differential``), idiom strings and the "but" rule are computed only when they can
  apply.

Compiled: ``./dev setup`` compiles this module with mypyc (shipped with mypy) into an extension module next
to it (``sentiment_fast.cpython-*.so``, git-ignored), which Python imports instead of this file, and writes
the hash of the source it compiled (``sentiment_fast.sha256``; a unit test fails when it no longer matches).
Without it (a plain ``pip install``) this file runs as is: same scores, ``IMPLEMENTATION`` says which one
runs. Why: in pure Python the per-token work (``split``, stripping punctuation, a set lookup) and the
interpreter's dispatch around it limit the speed-up; compiled, the loops run as C and only the
``str``/``set``/``dict`` operations themselves remain. The code is written for mypyc but stays plain
Python: ``Final`` constants (a literal one is a C constant, another module attribute is a dictionary
lookup per use), typed locals and native classes; everything it does is also valid, and tested, uncompiled.

Speed: ``compare`` measures it against the reference; the figures are in docs/performance.md ("Sentiment").

Reference → here (the reference's names; the rules keep their structure and comments):

=====================================  ==========================================================
``polarity_scores`` emoji loop         start of ``FastVader._sentiments``
``SentiText._words_and_emoticons``     ``FastVader._sentiments`` (tokens; ``_strip_punc_if_word``)
``allcap_differential``                ``allcap_differential`` (through ``_Capitals``)
``polarity_scores`` main loop          ``FastVader._sentiments`` (booster words), "kind of" in
                                       ``FastVader._sentiment_valence``
``sentiment_valence``                  ``FastVader._sentiment_valence``: "no", capitals, then the
                                       3 preceding words (``scalar_inc_dec`` → ``_scalar_inc_dec``,
                                       ``_negation_check`` inline); its common no-rule case is
                                       inline in ``FastVader._sentiments``
``_special_idioms_check``              ``FastVader._special_idioms``
``_least_check``                       end of ``FastVader._sentiment_valence``
``_but_check``                         ``but_check``
``_punctuation_emphasis``              ``punctuation_emphasis`` (``_amplify_ep``, ``_amplify_qm``)
``normalize``                          ``normalize``
``score_valence``                      ``FastVader.compound`` / ``FastVader.polarity_scores``
``round(compound, 4)``                 ``round4`` (same result, usually cheaper)
``_sift_sentiment_scores``             ``FastVader.polarity_scores``
``_sentiment_laden_idioms_check``      nothing: the reference never calls it
=====================================  ==========================================================

Quirks of the reference reproduced on purpose (the tests' hand-written corpus meets each):

- tokens are ``text.split()`` with leading/trailing ``string.punctuation`` removed, unless that leaves
  ≤ 2 characters: then the token is kept whole ("ok." stays "ok.", not the lexicon's "ok"; "of," is not
  "of", so "kind of," is not "kind of");
- lexicon keys are not lower-cased: the 14 keys with capitals (":D", "O_o" …) never match, since the
  looked-up word always is lower-cased;
- only single-character emoji are replaced (the lexicon's multi-character sequences never match); a
  description is not followed by a space ("😡abc" → "enraged faceabc"), and one can bring a "!" that
  counts as emphasis ("🔛" → "ON! arrow");
- "no" before a lexicon word has valence 0, but "no" is itself negated by a "no" 1 or 2 words before;
- ``_negation_check`` for the third preceding word multiplies by 1.25 when the *first* preceding word is
  "so" or "this", whatever the third is (operator precedence: ``a and b or c``);
- a booster word that is itself in the lexicon, or any preceding word in the lexicon, is skipped;
- ``_least_check`` never applies its "at least"/"very least" exception when "least" starts the text;
- ``_but_check`` finds each sentiment's position with ``list.index`` (the first *equal* value), so with
  repeated values it may scale an earlier position twice and leave the later one unscaled;
- ``_special_idioms_check`` runs only when the three preceding words exist and the third one is not a
  lexicon word; its booster bigrams ("kind of", "sort of", "just enough") add to the valence;
- question marks: 2–3 add 0.18 each, more add 0.96, one adds nothing; exclamation marks count up to 4;
  emphasis only moves a non-zero sum.
"""

from __future__ import annotations

import codecs
import math
import os
import re
import string
import time
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from math import floor, sqrt
from typing import Any, Final

from vaderSentiment import vaderSentiment as _ref

# "mypyc" when this module runs compiled (the extension module built by ./dev setup), else "python".
IMPLEMENTATION: Final = "python" if __file__.endswith(".py") else "mypyc"

# The reference's constants. Written out, not read from it: compiled, a Final literal is a C constant, while
# any other module attribute is a dictionary lookup at each use. The check below keeps them equal.
B_INCR: Final = 0.293
C_INCR: Final = 0.733
N_SCALAR: Final = -0.74
_PUNCTUATION: Final = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
if (_ref.B_INCR, _ref.C_INCR, _ref.N_SCALAR, string.punctuation) != (B_INCR, C_INCR, N_SCALAR, _PUNCTUATION):
    raise ImportError("vaderSentiment's constants differ from those written in sentiment_fast.py")
BOOSTER_DICT: Final[dict[str, float]] = _ref.BOOSTER_DICT
NEGATE: Final[frozenset[str]] = frozenset(_ref.NEGATE)
SPECIAL_CASES: Final[dict[str, float]] = _ref.SPECIAL_CASES

_SO_THIS: Final = ("so", "this")
_MULTIWORD: Final = [k.split() for k in [*SPECIAL_CASES, *BOOSTER_DICT] if " " in k]
# _special_idioms_check can only change a valence when one of its word sequences is a multi-word key of
# SPECIAL_CASES or BOOSTER_DICT: the lexicon word itself starts or ends one, or the two words before it (or
# the two before those) are the last two words of one. Its word strings are built only then.
_IDIOM_ENDS: Final = frozenset(word for words in _MULTIWORD for word in (words[0], words[-1]))
_IDIOM_LAST: Final = frozenset(words[-1] for words in _MULTIWORD)
_IDIOM_PAIRS: Final = frozenset((words[-2], words[-1]) for words in _MULTIWORD)
# Words that can change the valence of a lexicon word when they are 1, 2 or 3 words before it: booster words
# (scalar_inc_dec), negations (_negation_check, which also takes any word with "n't"; "never" and "without"
# are negations, needed by its "never so/this" and "without doubt" rules), "no" (sentiment_valence; 3 words
# before only with "or"/"nor" between), "so"/"this" (1 word before: the 1.25 rule for the 3rd word),
# "least" (_least_check, 1 word before).
_RULE_WORDS_3: Final = frozenset([*[k for k in BOOSTER_DICT if " " not in k], *NEGATE, "no"])
_RULE_WORDS_2: Final = _RULE_WORDS_3
_RULE_WORDS_1: Final = _RULE_WORDS_3 | {"so", "this", "least"}
# Lexicon words with rules of their own: "no" (negates the next lexicon word), "kind" ("kind of"), and the
# words that start or end an idiom or booster bigram.
_ITEM_RULES: Final = frozenset(["no", "kind"]) | _IDIOM_ENDS


def _package_file(name: str) -> str:
    """A file shipped next to ``vaderSentiment.py``, where the reference reads its lexicons."""
    path = os.path.join(os.path.dirname(os.path.abspath(_ref.__file__)), name)
    with codecs.open(path, encoding="utf-8") as f:
        return f.read()


def load_lexicon(text: str) -> dict[str, float]:
    """``SentimentIntensityAnalyzer.make_lex_dict``, same parsing (keys kept as written)."""
    lex: dict[str, float] = {}
    for line in text.rstrip("\n").split("\n"):
        if not line:
            continue
        word, measure = line.strip().split("\t")[0:2]
        lex[word] = float(measure)
    return lex


def load_emoji(text: str) -> dict[str, str]:
    """``SentimentIntensityAnalyzer.make_emoji_dict``, same parsing."""
    emoji: dict[str, str] = {}
    for line in text.rstrip("\n").split("\n"):
        key, description = line.strip().split("\t")[0:2]
        emoji[key] = description
    return emoji


def allcap_differential(words: Sequence[str]) -> bool:
    """``allcap_differential``: some, but not all, words are ALL CAPS (``str.isupper``)."""
    allcap_words = sum(map(str.isupper, words))
    return 0 < len(words) - allcap_words < len(words)


def normalize(score: float, alpha: float = 15) -> float:
    """``normalize``: score / sqrt(score² + alpha), clamped to [-1, 1]."""
    norm_score = score / sqrt((score * score) + alpha)
    if norm_score < -1.0:
        return -1.0
    if norm_score > 1.0:
        return 1.0
    return norm_score


def round4(x: float) -> float:
    """``round(x, 4)``, bit for bit, usually without its decimal conversion.

    ``round(x, 4)`` rounds the exact binary value of x half-to-even at 4 decimals, then returns the double
    nearest to that decimal. When ``y = x * 10000.0`` is not within 1e-6 of a half-integer, the rounding
    error of the product (≤ 1.2e-12 for |x| ≤ 1) cannot move it across one, so the integer r nearest to y
    is the same, and ``r / 10000.0`` (a correctly rounded division) is the same nearest double. The check
    ``|y - r| < 0.499999`` (exact: y and r are that close) proves that ``r = floor(y + 0.5)`` is that
    integer (``floor`` is cheaper than ``round`` once compiled). Otherwise, or for zero (its sign), this
    calls ``round(x, 4)``.
    """
    y = x * 10000.0
    r = floor(y + 0.5)
    if r and -0.499999 < y - r < 0.499999:
        return r / 10000.0
    return round(x, 4)


def _amplifier(ep_count: int, qm_count: int) -> float:
    """``_punctuation_emphasis`` = ``_amplify_ep`` + ``_amplify_qm`` for these counts, same operations."""
    if ep_count > 4:
        ep_count = 4
    ep_amplifier = ep_count * 0.292
    qm_amplifier = 0.0
    if qm_count > 1:
        qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
    return ep_amplifier + qm_amplifier


# Every value _punctuation_emphasis can return, indexed [min("!" count, 4)][min("?" count, 4)].
_AMPLIFIER: Final = tuple(tuple(_amplifier(ep, qm) for qm in range(5)) for ep in range(5))


def punctuation_emphasis(text: str) -> float:
    """``_punctuation_emphasis``: "!" (up to 4) and "?" (2, 3, or more) in the emoji-replaced text."""
    ep, qm = text.count("!"), text.count("?")
    return _AMPLIFIER[ep if ep < 4 else 4][qm if qm < 4 else 4]


def but_check(lowers: list[str], sentiments: list[float]) -> None:
    """``_but_check``, in place: sentiments before the first "but" × 0.5, after it × 1.5.

    Like the reference, each value's position is found with ``sentiments.index(value)``: the first
    *equal* value, which may be an earlier, already scaled one. Zeros are skipped: scaling a zero leaves
    a zero wherever it lands.
    """
    bi = lowers.index("but")
    for k in range(len(sentiments)):
        sentiment = sentiments[k]
        if not sentiment:
            continue
        si = sentiments.index(sentiment)
        if si < bi:
            sentiments[si] = sentiment * 0.5
        elif si > bi:
            sentiments[si] = sentiment * 1.5


class _Capitals:
    """Capitals of the words as written, computed on first use (most texts never need them).

    ``upper(i, word_lower)``: ``str.isupper`` of word i (the reference's ``item.isupper()`` in
    ``sentiment_valence``, ``word.isupper()`` in ``scalar_inc_dec``); ``differential()``:
    ``allcap_differential`` of all words. Both use the unstripped tokens: same answers, as punctuation has
    no case. An ASCII word can only be in capitals if its upper-case form is in the text (see
    ``_KELVIN``): that test spares splitting the text again.
    """

    __slots__ = ("_differential", "_quick", "_text", "_tokens")

    def __init__(self, text: str, quick: bool) -> None:
        self._text = text
        self._quick = quick  # no Kelvin sign in the text: see _KELVIN
        self._tokens: list[str] | None = None
        self._differential: bool | None = None

    def upper(self, i: int, word_lower: str) -> bool:
        if self._quick and word_lower.isascii() and word_lower.upper() not in self._text:
            return False
        if self._tokens is None:
            self._tokens = self._text.split()
        return self._tokens[i].isupper()

    def differential(self) -> bool:
        if self._differential is None:
            if self._tokens is None:
                self._tokens = self._text.split()
            self._differential = allcap_differential(self._tokens)
        return self._differential


# Why an ASCII word (lower-cased: w) can only be in capitals if w.upper() is in the text: the written word
# lower-cases to w, and the only non-ASCII character that lower-cases to ASCII characters only is the Kelvin
# sign (U+212A → "k"), so without one the written word is ASCII; in capitals it then equals w.upper().
_KELVIN: Final = "\u212a"

# What sentiment_valence's rules can do with a word (FastVader._word_flags; other words: 0).
_SCORED: Final = 1  # a lexicon word that is not a booster word: it has a sentiment of its own
_OWN_RULES: Final = 2  # ... with rules of its own (_ITEM_RULES)
_RULE_1: Final = 4  # can change the lexicon word right after it (_RULE_WORDS_1; words with "n't")
_RULE_23: Final = 8  # can change the lexicon word 2 or 3 words after it (_RULE_WORDS_2, _RULE_WORDS_3)
_IDIOM_LAST_WORD: Final = 16  # ends a multi-word idiom or booster bigram (_IDIOM_LAST)
_NON_ASCII: Final = 32  # a lexicon word with a non-ASCII character (capitals: see _KELVIN)
_BUT: Final = 64  # "but" (_but_check)


class FastVader:
    """VADER 3.3.2 sentiment: the scores of ``SentimentIntensityAnalyzer``, computed faster.

    ``cache_size``: an LRU cache of compound scores by text (0 = none). A score is a pure function of the
    text, so the cache never changes a result; it helps on real streams, where texts repeat.
    """

    def __init__(self, cache_size: int = 0) -> None:
        self.lexicon = load_lexicon(_package_file("vader_lexicon.txt"))
        self.emojis = load_emoji(_package_file("emoji_utf8_lexicon.txt"))
        # The reference tests each *character* against the emoji dict: only 1-character keys can match.
        # It writes " " + description where the previous character is not a space: always writing the
        # space gives the same tokens and the same "!" and "?" counts.
        self._emoji_text = {k: " " + v for k, v in self.emojis.items() if len(k) == 1}
        emoji_chars = frozenset(self._emoji_text)
        if any(c in emoji_chars for v in self._emoji_text.values() for c in v):
            raise ValueError("an emoji description contains an emoji: replacing one emoji at a time would differ")
        if any(c.isascii() for c in emoji_chars):
            raise ValueError("an ASCII emoji: ASCII texts would need the emoji replacement too")
        self._emoji_chars = emoji_chars
        # The characters that can be emoji: those below U+2000 one by one, then everything from the next
        # one up (accents and most letters are left out, curly quotes and "…" are in). A regular expression
        # of the emoji themselves would be slow: most are above U+FFFF, where `re` tests them one by one.
        below = sorted(c for c in emoji_chars if c < "\u2000")
        above = min(c for c in emoji_chars if c >= "\u2000")
        self._maybe_emoji = re.compile("[" + "".join(below) + above + "-\U0010ffff]").findall
        # Lexicon words that are not booster words: the main loop gives booster words 0 before anything.
        self._scored = {k: v for k, v in self.lexicon.items() if k not in BOOSTER_DICT}
        self._word_flags: dict[str, int] = {word: _SCORED for word in self._scored}
        word_flags = self._word_flags
        flagged: list[tuple[Iterable[str], int]] = [
            (_ITEM_RULES.intersection(self._scored), _OWN_RULES),
            (_RULE_WORDS_1, _RULE_1),
            (_RULE_WORDS_2 | _RULE_WORDS_3, _RULE_23),
            (_IDIOM_LAST, _IDIOM_LAST_WORD),
            ([word for word in self._scored if not word.isascii()], _NON_ASCII),
            (["but"], _BUT),
        ]
        for words, flag in flagged:
            for word in words:
                word_flags[word] = word_flags.get(word, 0) | flag
        # Most words have no flags: testing a set first is faster than looking them up (a dict's misses cost more).
        self._flagged_words = frozenset(word_flags)
        self._least_negates = "least" not in self.lexicon  # _least_check's condition
        self.compound: Callable[[str], float] = (
            lru_cache(maxsize=cache_size)(self._compound) if cache_size > 0 else self._compound
        )

    def _sentiments(self, text: str) -> tuple[list[float], int, str]:
        """The sentiments the reference gives the lexicon words of a text, in order (other tokens: 0).

        Returns (those sentiments, the number of tokens, the emoji-replaced text used for punctuation).
        """
        # --- polarity_scores: emoji → their descriptions (only non-ASCII texts can have one) ---
        ascii_text = text.isascii()
        exact_lowering = False
        if not ascii_text:
            maybe = self._maybe_emoji(text)
            if maybe:
                for emoji in self._emoji_chars.intersection(maybe):
                    text = text.replace(emoji, self._emoji_text[emoji])
            exact_lowering = "\u0130" in text
        # --- SentiText._words_and_emoticons, lower-cased ---
        # Tokens lose their leading and trailing punctuation unless that leaves ≤ 2 characters (letters and
        # digits only: nothing to strip). The rules see the words lower-cased (capitals: _Capitals).
        # Lower-casing the text before splitting gives the same words: lower-casing keeps whitespace and
        # ASCII punctuation, creates neither, and whitespace bounds its only context rule (Greek final
        # sigma). It keeps lengths too, except for "İ" (→ "i̇"), which could change the "≤ 2" decision:
        # texts with one lower-case each word after stripping, like the reference.
        low_text = text.lower()
        if exact_lowering:
            tokens = [s.lower() if len(s := t.strip(_PUNCTUATION)) > 2 else t.lower() for t in text.split()]
        else:
            tokens = low_text.split()
        # --- polarity_scores main loop, lexicon words (booster words are not _SCORED): sentiment_valence,
        # its common case inline: none of its rules can change the word's valence (no rule word 1, 2 or 3
        # words before it, see _RULE_WORDS_*; no rule of its own, _ITEM_RULES; no idiom), so only capitals
        # may. f1, f2, f3: the flags of the words 1, 2, 3 before the current one (0 before the text).
        word_flags = self._word_flags
        flagged_words = self._flagged_words
        scored = self._scored
        has_nt = "n't" in low_text
        quick_caps = ascii_text or _KELVIN not in text  # see _KELVIN
        caps: _Capitals | None = None
        lowers: list[str] = []
        positions: list[int] = []  # of the lexicon words, in `lowers`
        sentiments: list[float] = []
        slow: list[int] = []  # indexes in `sentiments` of the words whose rules apply: computed below
        f1 = f2 = f3 = 0
        all_flags = 0
        for word in tokens:
            if not exact_lowering and not word.isalnum() and len(stripped := word.strip(_PUNCTUATION)) > 2:
                word = stripped
            flags = word_flags[word] if word in flagged_words else 0
            if has_nt and "n't" in word:
                flags |= _RULE_1 | _RULE_23
            if flags & _SCORED:
                i = len(lowers)
                valence = scored[word]
                if (
                    flags & _OWN_RULES
                    or f1 & _RULE_1
                    or (f2 | f3) & _RULE_23
                    or (f1 & _IDIOM_LAST_WORD and (lowers[i - 2] if i > 1 else "", lowers[i - 1]) in _IDIOM_PAIRS)
                    or (f2 & _IDIOM_LAST_WORD and (lowers[i - 3] if i > 2 else "", lowers[i - 2]) in _IDIOM_PAIRS)
                ):
                    slow.append(len(sentiments))
                elif not (quick_caps and not flags & _NON_ASCII and word.upper() not in text):
                    if caps is None:
                        caps = _Capitals(text, quick_caps)
                    if caps.upper(i, word) and caps.differential():
                        valence = valence + C_INCR if valence > 0 else valence - C_INCR
                positions.append(i)
                sentiments.append(valence)
            lowers.append(word)
            all_flags |= flags
            f3 = f2
            f2 = f1
            f1 = flags
        n = len(lowers)
        if not positions:
            return sentiments, n, text
        for k in slow:
            if caps is None:
                caps = _Capitals(text, quick_caps)
            i = positions[k]
            p1 = lowers[i - 1] if i > 0 else ""
            p2 = lowers[i - 2] if i > 1 else ""
            p3 = lowers[i - 3] if i > 2 else ""
            sentiments[k] = self._sentiment_valence(sentiments[k], lowers, i, p1, p2, p3, caps)
        # --- _but_check ---
        if all_flags & _BUT:
            full: list[float] = [0.0] * n
            for i, valence in zip(positions, sentiments, strict=True):
                full[i] = valence
            but_check(lowers, full)
            sentiments = [full[i] for i in positions]
        return sentiments, n, text

    def _sentiment_valence(
        self, valence: float, lowers: list[str], i: int, p1: str, p2: str, p3: str, caps: _Capitals
    ) -> float:
        """``sentiment_valence`` (then ``_least_check``) for the lexicon word i, of lexicon valence
        ``valence``; p1, p2, p3: the words 1, 2, 3 before it ("" before the text).

        Also the main loop's "kind of" rule (sentiment 0: a zero adds nothing, like the reference's).
        """
        item_lowercase = lowers[i]
        last = len(lowers) - 1
        lexicon = self.lexicon
        if item_lowercase == "kind" and i < last and lowers[i + 1] == "of":
            return 0.0
        # check for "no" as negation for an adjacent lexicon item vs "no" as its own stand-alone lexicon item
        if item_lowercase == "no" and i != last and lowers[i + 1] in lexicon:
            valence = 0.0
        if p1 == "no" or p2 == "no" or (p3 == "no" and p1 in ("or", "nor")):
            valence = self._scored[item_lowercase] * N_SCALAR
        # check if sentiment laden word is in ALL CAPS (while others aren't)
        if caps.upper(i, item_lowercase) and caps.differential():
            if valence > 0:
                valence += C_INCR
            else:
                valence -= C_INCR
        # the 3 preceding words that are not in the lexicon: scalar_inc_dec (damped with the distance),
        # then _negation_check, then (3rd word) _special_idioms_check
        # start_i = 0
        if i > 0 and p1 not in lexicon:
            if p1 in BOOSTER_DICT:  # scalar_inc_dec is 0.0 for any other word
                valence = valence + self._scalar_inc_dec(p1, valence, caps, i - 1)
            if p1 in NEGATE or "n't" in p1:
                valence = valence * N_SCALAR
        # start_i = 1
        if i > 1 and p2 not in lexicon:
            if p2 in BOOSTER_DICT:
                s = self._scalar_inc_dec(p2, valence, caps, i - 2)
                if s != 0:
                    s = s * 0.95
                valence = valence + s
            if p2 == "never" and p1 in _SO_THIS:
                valence = valence * 1.25
            elif p2 == "without" and p1 == "doubt":
                pass
            elif p2 in NEGATE or "n't" in p2:
                valence = valence * N_SCALAR
        # start_i = 2
        if i > 2 and p3 not in lexicon:
            if p3 in BOOSTER_DICT:
                s = self._scalar_inc_dec(p3, valence, caps, i - 3)
                if s != 0:
                    s = s * 0.9
                valence = valence + s
            if (p3 == "never" and p2 in _SO_THIS) or p1 in _SO_THIS:  # sic: `a and b or c`
                valence = valence * 1.25
            elif p3 == "without" and (p2 == "doubt" or p1 == "doubt"):
                pass
            elif p3 in NEGATE or "n't" in p3:
                valence = valence * N_SCALAR
            if (
                item_lowercase in _IDIOM_ENDS
                or (p1 in _IDIOM_LAST and (p2, p1) in _IDIOM_PAIRS)
                or (p2 in _IDIOM_LAST and (p3, p2) in _IDIOM_PAIRS)
            ):  # else no sequence of _special_idioms_check can match
                valence = self._special_idioms(valence, lowers, i)
        # _least_check
        if p1 == "least" and self._least_negates and (i == 1 or (p2 != "at" and p2 != "very")):
            valence = valence * N_SCALAR
        return valence

    @staticmethod
    def _scalar_inc_dec(word_lower: str, valence: float, caps: _Capitals, i: int) -> float:
        """``scalar_inc_dec`` for the booster word at i (its lower-case form: ``word_lower``)."""
        scalar = BOOSTER_DICT[word_lower]
        if valence < 0:
            scalar *= -1
        # check if booster/dampener word is in ALLCAPS (while others aren't)
        if caps.upper(i, word_lower) and caps.differential():
            if valence > 0:
                scalar += C_INCR
            else:
                scalar -= C_INCR
        return scalar

    @staticmethod
    def _special_idioms(valence: float, lowers: list[str], i: int) -> float:
        """``_special_idioms_check`` (called with i ≥ 3, like the reference)."""
        onezero = f"{lowers[i - 1]} {lowers[i]}"
        twoonezero = f"{lowers[i - 2]} {lowers[i - 1]} {lowers[i]}"
        twoone = f"{lowers[i - 2]} {lowers[i - 1]}"
        threetwoone = f"{lowers[i - 3]} {lowers[i - 2]} {lowers[i - 1]}"
        threetwo = f"{lowers[i - 3]} {lowers[i - 2]}"
        for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
            if seq in SPECIAL_CASES:
                valence = SPECIAL_CASES[seq]
                break
        if len(lowers) - 1 > i:
            zeroone = f"{lowers[i]} {lowers[i + 1]}"
            if zeroone in SPECIAL_CASES:
                valence = SPECIAL_CASES[zeroone]
        if len(lowers) - 1 > i + 1:
            zeroonetwo = f"{lowers[i]} {lowers[i + 1]} {lowers[i + 2]}"
            if zeroonetwo in SPECIAL_CASES:
                valence = SPECIAL_CASES[zeroonetwo]
        # check for booster/dampener bi-grams such as 'sort of' or 'kind of'
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in BOOSTER_DICT:
                valence = valence + BOOSTER_DICT[n_gram]
        return valence

    def _compound(self, text: str) -> float:
        """``polarity_scores(text)["compound"]``: the compound part of ``score_valence``.

        ``punctuation_emphasis``, ``normalize`` and ``round4`` are written out here (same operations): this
        runs once per text, where a function call is a measurable part of the time.
        """
        sentiments, _, text = self._sentiments(text)
        if not sentiments:
            return 0.0
        sum_s = sum(sentiments, 0.0)  # the builtin (floats, start 0.0: the reference's result on any Python)
        # compute and add emphasis from punctuation in text (punctuation_emphasis)
        if sum_s > 0:
            ep, qm = text.count("!"), text.count("?")
            sum_s += _AMPLIFIER[ep if ep < 4 else 4][qm if qm < 4 else 4]
        elif sum_s < 0:
            ep, qm = text.count("!"), text.count("?")
            sum_s -= _AMPLIFIER[ep if ep < 4 else 4][qm if qm < 4 else 4]
        # normalize
        norm_score = sum_s / sqrt((sum_s * sum_s) + 15)
        if norm_score < -1.0:
            norm_score = -1.0
        elif norm_score > 1.0:
            norm_score = 1.0
        # round4
        y = norm_score * 10000.0
        r = floor(y + 0.5)
        if r and -0.499999 < y - r < 0.499999:
            return r / 10000.0
        return round(norm_score, 4)

    def polarity_scores(self, text: str) -> dict[str, float]:
        """``polarity_scores(text)``: neg, neu, pos and compound (``score_valence``)."""
        sentiments, n, text = self._sentiments(text)
        if not n:
            return {"neg": 0.0, "neu": 0.0, "pos": 0.0, "compound": 0.0}
        sum_s = float(sum(sentiments))
        punct_emph_amplifier = punctuation_emphasis(text)
        if sum_s > 0:
            sum_s += punct_emph_amplifier
        elif sum_s < 0:
            sum_s -= punct_emph_amplifier
        compound = normalize(sum_s)
        # _sift_sentiment_scores: the tokens that are not in `sentiments` all have sentiment 0
        pos_sum = 0.0
        neg_sum = 0.0
        neu_count = n - len(sentiments)
        for sentiment_score in sentiments:
            if sentiment_score > 0:
                pos_sum += float(sentiment_score) + 1
            if sentiment_score < 0:
                neg_sum += float(sentiment_score) - 1
            if sentiment_score == 0:
                neu_count += 1
        if pos_sum > math.fabs(neg_sum):
            pos_sum += punct_emph_amplifier
        elif pos_sum < math.fabs(neg_sum):
            neg_sum -= punct_emph_amplifier
        total = pos_sum + math.fabs(neg_sum) + neu_count
        return {
            "neg": round(math.fabs(neg_sum / total), 3),
            "neu": round(math.fabs(neu_count / total), 3),
            "pos": round(math.fabs(pos_sum / total), 3),
            "compound": round(compound, 4),
        }


def compare(texts: list[str], repeat: int = 5) -> dict[str, Any]:
    """Time the reference and FastVader (no cache) on the same texts.

    ``repeat`` rounds, each timing the reference then FastVader over all texts (``time.perf_counter``);
    the fastest round of each counts (interleaving them keeps a busy machine's noise fair to both).
    Returns {"texts", "reference_per_s", "fast_per_s", "speedup", "max_abs_diff"} (compound scores).
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    reference = SentimentIntensityAnalyzer()
    fast = FastVader(cache_size=0)
    polarity_scores = reference.polarity_scores
    compound = fast.compound
    reference_s = fast_s = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            polarity_scores(text)["compound"]
        reference_s = min(reference_s, time.perf_counter() - start)
        start = time.perf_counter()
        for text in texts:
            compound(text)
        fast_s = min(fast_s, time.perf_counter() - start)
    diff = max((abs(polarity_scores(t)["compound"] - compound(t)) for t in texts), default=0.0)
    n = len(texts)
    return {
        "texts": n,
        "reference_per_s": n / reference_s if reference_s else 0.0,
        "fast_per_s": n / fast_s if fast_s else 0.0,
        "speedup": reference_s / fast_s if fast_s else 0.0,
        "max_abs_diff": diff,
    }
