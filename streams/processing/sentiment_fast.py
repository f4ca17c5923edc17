"""VADER 3.3.2's compound score, computed ≥10× faster with the same result (pure Python).

``FastVader().compound(text)`` equals ``SentimentIntensityAnalyzer().polarity_scores(text)["compound"]``
of ``vaderSentiment`` 3.3.2 on every text (tests: ``tests/unit/test_sentiment_fast.py``). It reads the
lexicons shipped in the ``vaderSentiment`` package and reuses its constants, applies the same rules in the
same order with the same floating point operations, but:

- emoji are replaced by their descriptions with one ``str.translate`` call, and only when the text
  contains one of them (the reference appends the text to a new string one character at a time);
- each token is lower-cased once (the reference lower-cases the whole token list again for every
  preceding word it inspects: ``_negation_check`` and ``_special_idioms_check``, so O(n²) per text);
- only the words found in the lexicon are visited; all other tokens have sentiment 0, which adds
  nothing to the sums;
- ``allcap_differential`` is computed only when a word that could use it is in capitals;
- the idiom strings are built only when one of the words could belong to an idiom;
- the "but" rule's per-sentiment ``list.index`` scan runs only on texts that contain "but".

Reference rules and where they are reproduced (names are the reference's):

=====================================  ==========================================================
reference                              here
=====================================  ==========================================================
``polarity_scores`` emoji loop         ``FastVader._emoji_table`` (``str.translate``)
``SentiText._words_and_emoticons``     ``FastVader._tokens`` (``_strip_punc_if_word`` inline)
``allcap_differential``                ``allcap_differential``
``polarity_scores`` main loop          ``FastVader._sentiments`` (booster words, "kind of")
``sentiment_valence``                  ``FastVader._sentiments`` ("no", capitals, the 3 preceding
                                       words: ``scalar_inc_dec`` + ``_negation_check``)
``_special_idioms_check``              ``FastVader._special_idioms``
``_least_check``                       end of the word loop in ``FastVader._sentiments``
``_but_check``                         ``but_check``
``_punctuation_emphasis``              ``punctuation_emphasis`` (``_amplify_ep``, ``_amplify_qm``)
``normalize``                          ``normalize``
``score_valence``                      ``FastVader.compound`` / ``FastVader.polarity_scores``
``_sift_sentiment_scores``             ``FastVader.polarity_scores``
``_sentiment_laden_idioms_check``      nothing: never called by the reference
=====================================  ==========================================================

Quirks of the reference reproduced on purpose (each is tested):

- tokens are ``text.split()`` with leading/trailing ``string.punctuation`` removed, unless that leaves
  ≤ 2 characters: then the token is kept whole ("ok." stays "ok.", so it is not the lexicon's "ok");
- lexicon keys are not lower-cased: the 14 keys with capitals (":D", "O_o" …) can never match, since
  the looked-up word always is;
- only single-character emoji are replaced (the lexicon's multi-character sequences never match); an
  emoji's description is not followed by a space ("😡abc" → "enraged faceabc"), and a description can
  contain "!" that counts as emphasis ("🔛" → "ON! arrow");
- ``_negation_check`` for the third preceding word multiplies by 1.25 when the *first* preceding word is
  "so" or "this", whatever the third one is (operator precedence: ``a and b or c``);
- "no" before a lexicon word has valence 0, but "no" itself is negated by a "no" 1–2 words before;
- ``_least_check`` never looks at "at least" when "least" is the word just before (``if/elif``);
- ``_but_check`` finds each sentiment's position with ``list.index`` (the first *equal* value), so with
  repeated values it may scale an earlier position twice and leave the later one unscaled;
- ``_special_idioms_check`` runs only when the three preceding words exist and the third one is not a
  lexicon word; its booster bigrams ("kind of", "sort of", "just enough") add to the valence;
- question marks: 2–3 add 0.18 each, more add 0.96, one adds nothing; exclamation marks count up to 4.
"""

from __future__ import annotations

import codecs
import math
import os
import string
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import compress, count, repeat
from operator import is_not
from typing import Any

from vaderSentiment import vaderSentiment as _ref

B_INCR: float = _ref.B_INCR
C_INCR: float = _ref.C_INCR
N_SCALAR: float = _ref.N_SCALAR
BOOSTER_DICT: dict[str, float] = _ref.BOOSTER_DICT
NEGATE: frozenset[str] = frozenset(_ref.NEGATE)
SPECIAL_CASES: dict[str, float] = _ref.SPECIAL_CASES

_PUNCTUATION = string.punctuation
# Words that can end / start a multi-word key of SPECIAL_CASES or BOOSTER_DICT ("kind of", "the shit" …):
# the idiom strings are built only when one of them is at the right place.
_IDIOM_LAST = frozenset(k.split()[-1] for k in [*SPECIAL_CASES, *BOOSTER_DICT] if " " in k)
_IDIOM_FIRST = frozenset(k.split()[0] for k in SPECIAL_CASES if " " in k)
_SO_THIS = ("so", "this")
# Words whose presence among the 3 words before a lexicon word can change its valence (booster words,
# negations, "no", "never so/this", "without doubt", "least", idioms). Words containing "n't" also do.
_MODIFIERS = frozenset(
    [*(k for k in BOOSTER_DICT if " " not in k), *NEGATE, "no", "never", "without", "so", "this", "least"]
) | _IDIOM_LAST
# Lexicon words with rules of their own: "no" (a negation before another lexicon word), "kind" ("kind of").
_ITEM_RULES = frozenset(["no", "kind"]) | _IDIOM_FIRST | _IDIOM_LAST


def _package_file(name: str) -> str:
    """A file shipped next to ``vaderSentiment.py`` (where the reference reads its lexicons)."""
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
    norm_score = score / math.sqrt((score * score) + alpha)
    if norm_score < -1.0:
        return -1.0
    if norm_score > 1.0:
        return 1.0
    return norm_score


def _amplifier(ep_count: int, qm_count: int) -> float:
    """``_punctuation_emphasis`` = ``_amplify_ep`` + ``_amplify_qm`` for these counts, same operations."""
    ep_amplifier = min(ep_count, 4) * 0.292
    qm_amplifier: float = 0
    if qm_count > 1:
        qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
    return ep_amplifier + qm_amplifier


# All the values _punctuation_emphasis can return, indexed [min(!, 4)][min(?, 4)].
_AMPLIFIER = tuple(tuple(_amplifier(ep, qm) for qm in range(5)) for ep in range(5))


def punctuation_emphasis(text: str) -> float:
    """``_punctuation_emphasis``: "!" (up to 4) and "?" (2, 3, or more) in the emoji-replaced text."""
    return _AMPLIFIER[min(text.count("!"), 4)][min(text.count("?"), 4)]


def but_check(lowers: list[str], sentiments: list[float]) -> None:
    """``_but_check``, in place: before the first "but" × 0.5, after it × 1.5.

    Reproduces the reference's lookup of each value with ``sentiments.index(value)`` (first equal value,
    which may be an already scaled earlier one). Zeros are skipped: scaling a zero leaves a zero.
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
    """Capitals of the tokens as written, computed on first use (most texts never need them).

    ``upper(i)``: ``str.isupper`` of word i (the reference's ``item.isupper()`` and ``word.isupper()`` in
    ``scalar_inc_dec``); ``differential()``: ``allcap_differential`` of all words. Both equal the reference's
    on the unstripped tokens, since punctuation has no case.
    """

    __slots__ = ("_differential", "_text", "_tokens")

    def __init__(self, text: str, tokens: list[str]) -> None:
        self._text = text
        self._tokens = tokens
        self._differential: bool | None = None

    def upper(self, i: int) -> bool:
        if not self._tokens:
            self._tokens = self._text.split()
        return self._tokens[i].isupper()

    def differential(self) -> bool:
        if self._differential is None:
            if not self._tokens:
                self._tokens = self._text.split()
            self._differential = allcap_differential(self._tokens)
        return self._differential


class FastVader:
    """VADER 3.3.2 sentiment, same scores as ``SentimentIntensityAnalyzer``, ~10-20× faster.

    ``cache_size``: an LRU cache of compound scores by text (0 = none). Scores are a pure function of the
    text, so the cache never changes a result; it helps on real streams where texts repeat.
    """

    def __init__(self, cache_size: int = 0) -> None:
        self.lexicon = load_lexicon(_package_file("vader_lexicon.txt"))
        self.emojis = load_emoji(_package_file("emoji_utf8_lexicon.txt"))
        # The reference tests each *character* against the emoji dict: only 1-character keys can match.
        single = {k: v for k, v in self.emojis.items() if len(k) == 1}
        self._emoji_chars = frozenset(single)
        # A leading space where the reference adds one only after a non-space: same tokens either way.
        self._emoji_table = {ord(k): " " + v for k, v in single.items()}
        # Lexicon words that are not booster words (the main loop gives booster words 0 first).
        self._scored = {k: v for k, v in self.lexicon.items() if k not in BOOSTER_DICT}
        self._least_negates = "least" not in self.lexicon  # _least_check requires it
        self.compound: Callable[[str], float] = (
            lru_cache(maxsize=cache_size)(self._compound) if cache_size > 0 else self._compound
        )

    # --- text → tokens ----------------------------------------------------------------------------------

    def _tokens(self, text: str) -> tuple[str, str, list[str], list[str]]:
        """Emoji → descriptions, then ``SentiText._words_and_emoticons`` and each word lower-cased.

        Returns (emoji-replaced text, same lower-cased, its tokens as written or [] if not computed yet,
        lower-cased words).
        ``SentiText._words_and_emoticons`` strips each token of its leading and trailing punctuation unless
        that leaves ≤ 2 characters; the rules use the words lower-cased, and their capitals only through
        ``str.isupper``, which punctuation does not change: so the tokens as written serve for capitals.

        Lower-casing the whole text once, then splitting and stripping, gives the same lower-cased words:
        lower-casing keeps whitespace and ASCII punctuation, never creates either, and whitespace bounds the
        only context-dependent rule (Greek final sigma). It also keeps each character's length, except "İ"
        (U+0130 → "i̇"), which could change the "≤ 2 characters" decision: those texts take the long way.
        """
        if not text.isascii() and not self._emoji_chars.isdisjoint(text):
            text = text.translate(self._emoji_table)
        if "\u0130" in text:
            tokens = text.split()
            words = [s if len(s := t.strip(_PUNCTUATION)) > 2 else t for t in tokens]
            return text, text.lower(), tokens, [w.lower() for w in words]
        low_text = text.lower()
        low_tokens = low_text.split()
        # strip every token in C, then put back the (few) stripped tokens left with ≤ 2 characters
        lowers = list(map(str.strip, low_tokens, repeat(_PUNCTUATION)))
        for i in compress(count(), map(is_not, lowers, low_tokens)):  # str.strip returns the token if unchanged
            if len(lowers[i]) <= 2:
                lowers[i] = low_tokens[i]
        return text, low_text, [], lowers

    # --- rules --------------------------------------------------------------------------------------------

    def _sentiments(self, text: str) -> tuple[list[float], int, str]:
        """Sentiment of each lexicon word, in order, after all rules (``polarity_scores`` main loop,
        ``sentiment_valence``, ``_least_check``, ``_but_check``).

        Returns (those sentiments, the number of tokens, the emoji-replaced text). Every other token has
        sentiment 0 in the reference.

        A lexicon word none of whose rules can apply (it is not "no", "kind" or part of an idiom, the three
        words before it are none of ``_MODIFIERS`` and the text has no "n't") keeps its lexicon valence,
        except for capitals: that common case skips the rules.
        """
        text, low_text, tokens, lowers = self._tokens(text)
        scored = self._scored
        n = len(lowers)
        positions = list(compress(count(), map(scored.__contains__, lowers)))
        if not positions:
            return [], n, text
        lexicon = self.lexicon
        ascii_text = text.isascii()
        has_nt = "n't" in low_text
        last = n - 1
        caps = _Capitals(text, tokens)
        sentiments: list[float] = []
        kept: list[int] = []
        for i in positions:
            item_lowercase = lowers[i]
            # polarity_scores: "kind" of "kind of" has sentiment 0 (booster words are not in `scored`)
            if item_lowercase == "kind" and i < last and lowers[i + 1] == "of":
                continue
            kept.append(i)
            # --- sentiment_valence ---
            valence = scored[item_lowercase]
            p1 = lowers[i - 1] if i > 0 else ""
            p2 = lowers[i - 2] if i > 1 else ""
            p3 = lowers[i - 3] if i > 2 else ""
            if (
                not has_nt
                and item_lowercase not in _ITEM_RULES
                and p1 not in _MODIFIERS
                and p2 not in _MODIFIERS
                and p3 not in _MODIFIERS
            ):
                # no rule applies but capitals
                if (ascii_text and item_lowercase.upper() not in text) or not caps.upper(i):
                    sentiments.append(valence)
                elif caps.differential():
                    sentiments.append(valence + C_INCR if valence > 0 else valence - C_INCR)
                else:
                    sentiments.append(valence)
                continue
            # "no" before a lexicon word is a negation, not a negative word
            if item_lowercase == "no" and i != last and lowers[i + 1] in lexicon:
                valence = 0.0
            if p1 == "no" or p2 == "no" or (p3 == "no" and p1 in ("or", "nor")):
                valence = scored[item_lowercase] * N_SCALAR
            # ALL CAPS word while others are not
            if caps.upper(i) and caps.differential():
                if valence > 0:
                    valence += C_INCR
                else:
                    valence -= C_INCR
            # the 3 preceding words: scalar_inc_dec, then _negation_check (then _special_idioms_check)
            # start_i = 0
            if i > 0 and p1 not in lexicon:
                if p1 in BOOSTER_DICT:
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
                if item_lowercase in _IDIOM_FIRST or p1 in _IDIOM_LAST or p2 in _IDIOM_LAST or (
                    item_lowercase in _IDIOM_LAST
                ):
                    valence = self._special_idioms(valence, lowers, i)
            # _least_check
            if p1 == "least" and self._least_negates and (i == 1 or (p2 != "at" and p2 != "very")):
                valence = valence * N_SCALAR
            sentiments.append(valence)
        if "but" in lowers:
            full: list[float] = [0.0] * n
            for i, valence in zip(kept, sentiments, strict=True):
                full[i] = valence
            but_check(lowers, full)
            sentiments = [full[i] for i in kept]
        return sentiments, n, text

    @staticmethod
    def _scalar_inc_dec(word_lower: str, valence: float, caps: _Capitals, i: int) -> float:
        """``scalar_inc_dec`` for the booster word at i (callers check ``word_lower in BOOSTER_DICT``; for
        any other word the reference returns 0.0, which changes nothing)."""
        scalar = BOOSTER_DICT[word_lower]
        if valence < 0:
            scalar *= -1
        if caps.upper(i) and caps.differential():
            if valence > 0:
                scalar += C_INCR
            else:
                scalar -= C_INCR
        return scalar

    @staticmethod
    def _special_idioms(valence: float, lowers: list[str], i: int) -> float:
        """``_special_idioms_check`` (only called with i ≥ 3, like the reference)."""
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
        # booster/dampener bigrams such as "sort of", "kind of"
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in BOOSTER_DICT:
                valence = valence + BOOSTER_DICT[n_gram]
        return valence

    # --- scores -------------------------------------------------------------------------------------------

    def _compound(self, text: str) -> float:
        """``polarity_scores(text)["compound"]`` (``score_valence``, compound part only)."""
        sentiments, _, text = self._sentiments(text)
        if not sentiments:
            return 0.0
        sum_s = float(sum(sentiments))
        if sum_s > 0:
            sum_s += punctuation_emphasis(text)
        elif sum_s < 0:
            sum_s -= punctuation_emphasis(text)
        return round(normalize(sum_s), 4)

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
    """Time the reference and FastVader (no cache) on the same texts: min of ``repeat`` runs each.

    Returns {"texts", "reference_per_s", "fast_per_s", "speedup", "max_abs_diff"} (compound scores).
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    reference = SentimentIntensityAnalyzer()
    fast = FastVader(cache_size=0)

    def best(score: Callable[[str], float]) -> float:
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            for text in texts:
                score(text)
            runs.append(time.perf_counter() - start)
        return min(runs)

    reference_s = best(lambda text: reference.polarity_scores(text)["compound"])
    fast_s = best(fast.compound)
    diff = max((abs(reference.polarity_scores(t)["compound"] - fast.compound(t)) for t in texts), default=0.0)
    n = len(texts)
    return {
        "texts": n,
        "reference_per_s": n / reference_s if reference_s else 0.0,
        "fast_per_s": n / fast_s if fast_s else 0.0,
        "speedup": reference_s / fast_s if fast_s else 0.0,
        "max_abs_diff": diff,
    }
