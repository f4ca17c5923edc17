"""FastVader gives vaderSentiment 3.3.2's scores: real tweets, a hand-written corpus of every rule and quirk,
and generated texts. Equality is checked within 1e-6 (in practice the scores are identical).

Every text is checked with the implementation in use (``streams.processing.sentiment_fast`` as imported:
the mypyc-compiled module when ``./dev setup`` built it) and, when that is the compiled one, also with the
pure Python module loaded from its source. Run: ``.venv/bin/pytest -q tests/unit -k sentiment``."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import math
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentimentIntensityAnalyzer

from streams.processing import sentiment_fast
from streams.processing.sentiment import SentimentScorer, reference_score
from streams.processing.sentiment_fast import FastVader, compare, round4
from tests.support import TWCS_DIR

TWCS = TWCS_DIR
TOLERANCE = 1e-6

SOURCE = Path(sentiment_fast.__file__).with_name("sentiment_fast.py")
COMPILED = SOURCE.with_name("sentiment_fast" + sysconfig.get_config_var("EXT_SUFFIX"))
SOURCE_HASH = SOURCE.with_name("sentiment_fast.sha256")  # written by ./dev setup when it compiles SOURCE


def load_pure_python() -> ModuleType:
    """``sentiment_fast`` run from its source, whether or not the compiled module exists."""
    spec = importlib.util.spec_from_file_location("sentiment_fast_pure_python", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = SentimentIntensityAnalyzer()
# The implementations checked: the one in use and, if that is the compiled one, the pure Python one.
MODULES = [sentiment_fast] if sentiment_fast.IMPLEMENTATION == "python" else [sentiment_fast, load_pure_python()]
IMPLEMENTATIONS = [module.FastVader() for module in MODULES]
FAST = IMPLEMENTATIONS[0]  # the implementation in use


def assert_same(text: str) -> None:
    expected = REFERENCE.polarity_scores(text)
    for fast in IMPLEMENTATIONS:
        assert abs(fast.compound(text) - expected["compound"]) <= TOLERANCE, text
        assert fast.polarity_scores(text) == pytest.approx(expected, abs=TOLERANCE), text


# --- which implementation runs ----------------------------------------------------------------------------


def test_pure_python_module_reports_itself() -> None:
    pure = load_pure_python()
    assert pure.IMPLEMENTATION == "python"
    assert pure.FastVader().compound("not bad at all!!") == REFERENCE.polarity_scores("not bad at all!!")["compound"]


@pytest.mark.skipif(not COMPILED.exists(), reason=f"{COMPILED.name} not built (./dev setup compiles it with mypyc)")
def test_compiled_module_is_the_one_in_use() -> None:
    assert sentiment_fast.__file__ == str(COMPILED)
    assert sentiment_fast.IMPLEMENTATION == "mypyc"
    assert SentimentScorer.implementation == SentimentScorer(cache_size=0).implementation == "mypyc"
    assert len(IMPLEMENTATIONS) == 2  # the exactness tests check the compiled module and the source
    assert type(FAST) is FastVader and FastVader.__module__ == "streams.processing.sentiment_fast"


@pytest.mark.skipif(not COMPILED.exists(), reason=f"{COMPILED.name} not built (./dev setup compiles it with mypyc)")
def test_compiled_module_is_built_from_the_current_source() -> None:
    """A stale compiled module would shadow an edited source: ./dev setup rebuilds it when the source changes."""
    assert SOURCE_HASH.exists(), f"{COMPILED.name} was not built by ./dev setup: run ./dev setup"
    source_hash = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert SOURCE_HASH.read_text().strip() == source_hash, f"{COMPILED.name} is stale: run ./dev setup"


# --- real texts ------------------------------------------------------------------------------------------


def twcs_texts() -> Iterator[str]:
    for path in sorted(TWCS.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                yield row["text"]


@pytest.mark.skipif(not TWCS.is_dir(), reason=f"{TWCS} (real Customer Support on Twitter samples) is absent")
def test_every_twcs_text() -> None:
    texts = list(twcs_texts())
    assert len(texts) > 5000  # both files: twcs_head5000.csv and kaggle_sample.csv
    for text in texts:
        assert_same(text)


# --- hand-written corpus: every rule ----------------------------------------------------------------------

PARAGRAPH = (
    "It was one of the worst movies I've seen, despite good reviews. Unbelievably bad acting!! Poor direction. "
    "VERY poor production. The movie was bad. Very bad movie. VERY BAD movie!"
)
CORPUS = [
    # the reference's own examples
    "VADER is smart, handsome, and funny.",
    "VADER is smart, handsome, and funny!",
    "VADER is very smart, handsome, and funny.",
    "VADER is VERY SMART, handsome, and FUNNY.",
    "VADER is VERY SMART, handsome, and FUNNY!!!",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "The book was good.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today SUX!",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!",
    "Most automated sentiment analysis tools are shit.",
    "With VADER, sentiment analysis is the shit!",
    "Other sentiment analysis tools can be quite bad.",
    "On the other hand, VADER is quite bad ass",
    "VADER is such a badass!",
    "Without a doubt, excellent idea.",
    "Roger Dodger is one of the most compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Not such a badass after all.",
    "Without a doubt, an excellent idea.",
    PARAGRAPH,
    # negations, "n't", "no"
    "I don't like it",
    "I do not like it at all",
    "It isn't good, it wasn't bad",
    "nothing good happened",
    "aint nobody happy",
    "Uh-uh, not good",
    "Neither good nor bad",
    "no good",
    "no, good",
    "no no no good",
    "no problem",
    "no",
    "no fun or joy",
    "no love nor hate",
    "It is no surprise and no joke",
    "I can't wait, won't stop, DON'T LIKE IT",
    "I'm not happy, we're NOT HAPPY",
    "it was hardly a good time",
    # "never so/this", "without doubt"
    "never good",
    "never so good",
    "never this good",
    "I have never been so happy",
    "it has never been this good",
    "so very good",  # "so" 1 word before the 3rd-word rule: × 1.25
    "this is this good",
    "without doubt the best",
    "without any doubt great",
    "without a doubt terrible",
    "not without doubt a good idea",
    # boosters and dampeners, capitals
    "very good",
    "VERY good",
    "very GOOD",
    "VERY GOOD",
    "really really good",
    "extremely bad",
    "absolutely fucking awful",
    "It is SO BAD and so good",
    "kind of good",
    "it was kind of good",
    "the service was kind of, good",  # "of," is not "of"
    "the service was sort of nice",
    "sorta nice, kinda sad, kindof ok",
    "it was just enough fun",
    "barely acceptable and slightly annoying",
    "I kind of like it",
    "kind",
    "kind of",
    "GOOD",
    "GOOD day",
    "I LOVE it",
    "I love IT",
    "HATE HATE HATE",
    "THIS IS GREAT",
    "This is GREAT",
    "ok OK Ok ok.",
    "GREAT!!! VERY VERY GOOD",
    # "least"
    "least favorite",
    "least happy",
    "at least happy",
    "the very least happy",
    "He is the least happy person",
    # "but" (first one only; values found by list.index)
    "good but bad",
    "great but terrible but nice",
    "I love it but hate it",
    "BUT it's fine",
    "great, but... bad",
    "nice but okay",  # 1.8 × 0.5 = 0.9 = "okay": the reference scales "nice" twice and "okay" not at all
    "fantastic but cool and fresh",
    "but",
    # idioms and special cases
    "the kiss of death for the product",
    "this car is the bomb",
    "this is the shit",
    "yeah right",
    "yeah right, that's great",
    "a cake to die for",
    "my beating heart",
    "sad at the bus stop",
    "it's a bad ass car",
    "he is a badass",
    "it cut the mustard",
    "in the red, under the weather",
    # punctuation
    "good?",
    "good??",
    "good???",
    "good????",
    "good?????",
    "good!",
    "good!!",
    "good!!!!",
    "good!!!!!!!",
    "bad!!!?",
    "?!?!?!",
    "Is it good?!",
    "good !!! ???",
    # emoji
    "😀",
    "😀😀😀",
    "I am 😡",
    "opened😡😡😡",
    "😡abc",
    "🔛 good",
    "🆙",
    "👍🏽 thanks",
    "🇺🇸 flag",
    "❤️ love",
    "☺️",
    "💔💔 broken",
    "good😀bad",
    "© ® ™",
    # empty, whitespace, punctuation only, emoticons
    "",
    " ",
    "\t\n",
    "!!!",
    "...",
    "?",
    ":)",
    ":-)",
    ":D",
    ":d",
    "<3",
    "</3",
    "(:",
    "):",
    "@ # $",
    # unicode
    "Café très bon, naïve résumé good",
    "ΟΔΟΣ ΚΑΛΟΣ",
    "Σ",
    "İstanbul is great",
    "İyi GOOD bad",
    "ＧＯＯＤ",
    "good\u00a0day",
    "good\u2028bad",
    "good\x1cbad",
    "\u01c5 hello",
    "O\u212a great",  # Kelvin sign: "OK" in capitals, lower-cased to "ok"
    "straße gut",
    "\ufb01ne",
    "𝐆𝐎𝐎𝐃",
    "“good” … ‘bad’",
    "“GOOD” news 😀, but the SERVICE is BAD",  # non-ASCII text, ASCII words in capitals
    "Café GOOD, O\u212a BAD",  # a Kelvin sign: the capitals of every word are read from the text
    # urls, handles, numbers
    "https://t.co/abc good",
    "www.great.com",
    "@AppleSupport thanks!",
    "#love #hate",
    "1 2 3 good",
    "10/10 would buy again",
    "5 stars",
    "$100 refund please",
    "call 1-800-555-1234",
    # long texts
    PARAGRAPH * 10,
    " ".join(["not very good", "but", "kind of great", "NEVER so bad", "the shit", "least happy"] * 40),
    "😡 " * 200 + "good",
]


def test_corpus_is_large_and_diverse() -> None:
    assert len(CORPUS) >= 80
    assert len(set(CORPUS)) == len(CORPUS)
    assert any(len(t.split()) >= 300 for t in CORPUS)


@pytest.mark.parametrize("text", CORPUS)
def test_hand_corpus(text: str) -> None:
    assert_same(text)


@pytest.mark.parametrize(
    ("text", "other"),
    [
        ("ok.", "ok"),  # ≤ 2 characters once stripped: the token stays whole
        ("the service was kind of, good", "the service was kind of good"),
        ("nice but okay", "nice but fine"),  # list.index finds the halved "nice" again
        ("so very good", "very good"),  # the 3rd word's 1.25 rule, triggered by the 1st word
        ("good 🔛", "good on arrow"),  # the description "ON! arrow" brings a "!": emphasis
    ],
)
def test_quirks_are_exercised(text: str, other: str) -> None:
    """The corpus really meets the reference's quirks: the two texts score differently there, and here."""
    assert REFERENCE.polarity_scores(text)["compound"] != REFERENCE.polarity_scores(other)["compound"]
    assert_same(text)
    assert_same(other)


# --- generated texts --------------------------------------------------------------------------------------

_LEXICON = sorted(REFERENCE.lexicon)
WORDS = [
    *_LEXICON[::40],
    *["good", "bad", "love", "hate", "great", "no", "kind", "ok", "okay", "nice", "happy", "sad", "doubt"],
    *["shit", "bomb", "ass", "kiss", "death", "die", "heart", "beating", "stop", "yeah", "badass", ":)", "<3"],
]
MODIFIERS = [
    *(k for k in BOOSTER_DICT if " " not in k),
    *["kind of", "sort of", "just enough", "not", "never", "isn't", "don't", "can't", "without", "nor", "or"],
    *["so", "this", "least", "at", "very", "but", "the", "to", "for", "of", "bus", "right", "nothing"],
]
FILLERS = ["i", "it", "was", "a", "the", "@brand", "http://x.co/Ab", "123", "it's", "ok.", "-", "&"]
PUNCTUATION = ["!", "?", "!!", "???", "?!", "!!!!!", ",", ".", "...", ":(", ":D"]
EMOJI = [*sorted(k for k in REFERENCE.emojis if len(k) == 1)[::25], "👍🏽", "❤️", "😡"]

word = st.one_of(st.sampled_from(WORDS), st.sampled_from(MODIFIERS), st.sampled_from(FILLERS), st.sampled_from(EMOJI))
styled = st.tuples(
    word,
    st.sampled_from([str, str, str.upper, str.capitalize]),
    st.sampled_from(["", "", "", "@", "#", '"', "("]),
    st.sampled_from(["", "", "", *PUNCTUATION]),
).map(lambda t: t[2] + t[1](t[0]) + t[3])
separator = st.sampled_from([" ", " ", " ", "  ", "\n", "\t", ""])
texts = st.lists(st.tuples(styled, separator), max_size=40).map(lambda parts: "".join(w + s for w, s in parts))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_generated_texts(text: str) -> None:
    assert_same(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_unicode(text: str) -> None:
    assert_same(text)


# --- pieces -----------------------------------------------------------------------------------------------


def same_float(a: float, b: float) -> bool:
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@settings(max_examples=500, deadline=None)
@given(st.floats(min_value=-1.0, max_value=1.0))
def test_round4_is_round(x: float) -> None:
    for module in MODULES:
        assert same_float(module.round4(x), round(x, 4))


def test_round4_near_half_ties() -> None:
    for k in range(-10_000, 10_000):
        tie = (k + 0.5) / 10_000
        for x in (tie, math.nextafter(tie, -2.0), math.nextafter(tie, 2.0), k / 10_000):
            assert same_float(round4(x), round(x, 4)), x
            assert same_float(MODULES[-1].round4(x), round(x, 4)), x


def test_cache_gives_the_same_scores() -> None:
    cached = FastVader(cache_size=64)
    for text in CORPUS * 2:
        assert cached.compound(text) == FAST.compound(text)


def test_scorer_uses_fast_vader_and_keeps_none_for_no_text() -> None:
    scorer = SentimentScorer()
    assert scorer.score(None) is None
    assert scorer.score("") is None
    assert scorer.score(" \n\t") is None
    assert reference_score(None) is None
    assert reference_score("  ") is None
    for text in ["good", "not good!!", "😡", ":)", "...", PARAGRAPH]:
        assert scorer.score(text) == reference_score(text) == SentimentScorer.reference_score(text)
    assert scorer.score("!!!") == 0.0  # punctuation only is a text: neutral, not None


def test_compare_reports_speed_and_difference() -> None:
    report = compare(["good", "not bad at all!!", "😡 terrible", ""], repeat=1)
    assert report["texts"] == 4
    assert report["max_abs_diff"] == 0.0
    assert report["reference_per_s"] > 0 and report["fast_per_s"] > 0
    assert report["speedup"] == pytest.approx(report["fast_per_s"] / report["reference_per_s"])
