"""``rapport bench needs-reply``: the rule-based needs-reply classifier against the hand labels.

Data (in the shared folder beside the repository, ``/work/shared`` for a checkout at ``/work/main``;
``RAPPORT_SHARED_DIR`` or ``--shared`` point elsewhere):

- ``data/needs_reply/labels_public.csv``: ``tweet_id, needs_reply, note`` (250 inbound tweets, hand
  labelled; see its README.md for the rubric);
- ``data/twcs/twcs_head5000.csv``: the tweets, joined on ``tweet_id``.

Each labelled tweet is classified with :func:`streams.processing.needs_reply.needs_reply`, where
``answers_brand_question`` is computed as the worker does: the tweet's parent
(``in_response_to_tweet_id``) is in the file, is a brand tweet (``inbound`` is not ``True``) and
:func:`~streams.processing.needs_reply.brand_asks`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import click

from streams.processing.needs_reply import brand_asks, needs_reply

LABELS = Path("data/needs_reply/labels_public.csv")
TWEETS = Path("data/twcs/twcs_head5000.csv")


def default_shared_dir() -> Path:
    """``RAPPORT_SHARED_DIR``, else the ``shared`` folder beside the repository checkout."""
    env = os.environ.get("RAPPORT_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared"


@dataclass(frozen=True)
class Evaluation:
    """Confusion counts with class 1 = needs a reply; ``misclassified``: tweet ids, in label order."""

    tp: int
    fp: int
    tn: int
    fn: int
    misclassified: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.total)

    @property
    def precision_reply(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall_reply(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def precision_no_reply(self) -> float:
        return _ratio(self.tn, self.tn + self.fn)

    @property
    def recall_no_reply(self) -> float:
        return _ratio(self.tn, self.tn + self.fp)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def evaluate(shared_dir: Path) -> Evaluation:
    """Classify every labelled tweet and count the outcomes. Raises FileNotFoundError without the data,
    KeyError for a labelled tweet_id missing from the tweets file."""
    tweets = {row["tweet_id"]: row for row in _read_csv(shared_dir / TWEETS)}
    tp = fp = tn = fn = 0
    wrong: list[str] = []
    for label in _read_csv(shared_dir / LABELS):
        tweet = tweets[label["tweet_id"]]
        parent = tweets.get(tweet.get("in_response_to_tweet_id") or "")
        asked = parent is not None and parent["inbound"] != "True" and brand_asks(parent["text"])
        predicted = needs_reply(tweet["text"], answers_brand_question=asked)
        actual = label["needs_reply"].strip() == "1"
        if predicted and actual:
            tp += 1
        elif predicted:
            fp += 1
        elif actual:
            fn += 1
        else:
            tn += 1
        if predicted != actual:
            wrong.append(label["tweet_id"])
    return Evaluation(tp=tp, fp=fp, tn=tn, fn=fn, misclassified=wrong)


def render(e: Evaluation) -> str:
    """A small aligned table: per-class precision / recall / support, accuracy and the confusion counts."""
    lines = [
        f"{'class':<16}{'precision':>10}{'recall':>8}{'support':>9}",
        f"{'needs reply':<16}{e.precision_reply:>10.3f}{e.recall_reply:>8.3f}{e.tp + e.fn:>9}",
        f"{'no reply':<16}{e.precision_no_reply:>10.3f}{e.recall_no_reply:>8.3f}{e.tn + e.fp:>9}",
        f"{'accuracy':<16}{e.accuracy:>10.3f}{'':>8}{e.total:>9}",
        "",
        f"tp={e.tp}  fp={e.fp}  tn={e.tn}  fn={e.fn}  misclassified={len(e.misclassified)}",
    ]
    if e.misclassified:
        lines.append("misclassified tweet ids: " + " ".join(e.misclassified))
    return "\n".join(lines) + "\n"


@click.command("needs-reply")
@click.option(
    "--shared",
    "shared_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=default_shared_dir,
    show_default="RAPPORT_SHARED_DIR, else the 'shared' folder beside the repository",
    help="Folder holding data/needs_reply/ and data/twcs/.",
)
def needs_reply_command(shared_dir: Path) -> None:
    """Score the rule-based needs-reply classifier on the hand-labelled tweets."""
    try:
        evaluation = evaluate(shared_dir)
    except FileNotFoundError as exc:
        raise click.ClickException(f"needs-reply labels not found: {exc.filename}") from exc
    click.echo(render(evaluation), nl=False)
