"""The rule-based needs-reply classifier: hand-written examples per rule group (not taken from the
labelled set), and its score on the hand labels in the shared data folder when that folder is present."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.bench.needs_reply import Evaluation, evaluate, needs_reply_command, render
from streams.processing.needs_reply import brand_asks, needs_reply

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
LABELS_DIR = SHARED / "data" / "needs_reply"

QUESTIONS = [
    "@AmericanAir is the lounge at DFW open during the renovation?",
    "@Tesco can I return an item without the receipt",
    "@SouthwestAir how do I change my flight",
    "@JetBlue Hello?? Anyone there?",
    "Hey @Netflix why does my profile keep switching language",
    "Why does @Brand charge a fee to pay by card? Is that even legal?",
    "@Vodafone ¿cómo puedo cambiar mi tarifa?",
]
COMPLAINTS = [
    "@Ryanair my flight has been cancelled and nobody at the desk can tell us anything",
    "@Vodafone no signal in Leeds since this morning",
    "@Deliveroo my order arrived cold and half of it was missing",
    "@Verizon my internet keeps dropping every 10 minutes",
    "@SpotifyCares app won't even open after the update",
    "@sprint your customer service is the worst",
    "@McDonalds found a hair in my burger 🤢",
    "@British_Airways still waiting for my compensation",
    "lol @Comcast internet is down again, shocker",
    "@Lyft driver was rude and drove like a maniac 😡",
    "When @Brand charges you for extra cheese you never asked for 😒",  # a joke that reports a wrong charge
    "Some of the worst service I have ever had @Brand",
]
REQUESTS = [
    "@Uber_Support I was charged twice for the same ride, please refund me",
    "@ATT Hi, I'd like to cancel my plan",
    "@Delta any update on my refund request from last month",
    "@TMobileHelp Please DM me",
    "@VirginAtlantic can you update my tier points on my account - thanks.",
    "@Chase I need to dispute a transaction",
    "@BofA_Help Sent a DM, hope you can get back to me soon",
]
CLOSINGS = [
    "@Delta thanks!",
    "@AmazonHelp got it, cheers",
    "@AppleSupport Will do",
    "@SpotifyCares That worked, thank you so much!",
    "@Uber_Support all sorted now, thanks for your help",
    "@Verizon it's working now, thanks",
    "@Southwest you guys are the best!",
    "@Tesco brilliant service today, thank you",
    "@VirginTrains thanks for the quick reply, much appreciated",
    "@AmazonHelp ありがとうございます！",
]
COMMENTARY = [
    "Just landed with @Delta, smooth flight",
    "Going to @Target later to get snacks",
    "Shoutout to @Chipotle for the free guac today",
    "Best part of my day? Free cookies on @Brand flights",
    "RT to win a $50 gift card from @Brand! #giveaway https://t.co/x",
    "@a @b @c @d @e Round two of the taste test tomorrow, who is ready?",
    "@116658 That's not good. Were you able to restart the router? ^JAY",  # a brand agent, anonymised
]
EMOJI_ONLY = ["😂😂😂", "@Starbucks ❤️❤️", "@Nike https://t.co/abc", "🔥 @Brand 🔥"]
ANSWERS_KEEP_CASE_OPEN = [
    "@AmazonHelp done",
    "@Delta DM sent",
    "@Ryanair 123-4567890",
    "@KLM ABC123",
    "@Uber_Support I tried that and it still doesn't work",
    "@VerizonSupport form submitted",
    "@AppleSupport iOS 11.2, iPhone 8",
    "@SpotifyCares Okay! I did it! Thanks",
    "@TMobileHelp https://t.co/screenshot",  # a screenshot sent back
]
ANSWERS_THAT_CLOSE = [
    "@AdobeCare sure thing",
    "@Delta will do",
    "@AmazonHelp thanks!",
    "@Hulu ok",
    "@Tesco Sure, thanks",
]


@pytest.mark.parametrize("text", QUESTIONS + COMPLAINTS + REQUESTS)
def test_questions_complaints_and_requests_need_a_reply(text: str) -> None:
    assert needs_reply(text) is True


@pytest.mark.parametrize("text", CLOSINGS + COMMENTARY + EMOJI_ONLY)
def test_thanks_praise_commentary_promos_and_emoji_do_not(text: str) -> None:
    assert needs_reply(text) is False


@pytest.mark.parametrize("text", [None, "", "   \n", "@Brand", "@Brand @Other"])
def test_missing_or_empty_text_does_not(text: str | None) -> None:
    assert needs_reply(text) is False
    assert needs_reply(text, answers_brand_question=True) is False


@pytest.mark.parametrize("text", ANSWERS_KEEP_CASE_OPEN)
def test_an_answer_to_a_brand_question_keeps_the_case_open(text: str) -> None:
    assert needs_reply(text, answers_brand_question=True) is True


@pytest.mark.parametrize("text", ANSWERS_THAT_CLOSE)
def test_a_bare_acknowledgement_of_a_brand_question_does_not(text: str) -> None:
    assert needs_reply(text, answers_brand_question=True) is False


def test_a_bare_done_counts_only_as_an_answer_to_the_brand() -> None:
    assert needs_reply("@SpotifyCares Okay! I did it! Thanks", answers_brand_question=False) is False
    assert needs_reply("@SpotifyCares Okay! I did it! Thanks", answers_brand_question=True) is True


def test_a_problem_beats_thanks_and_a_question_beats_resolved() -> None:
    assert needs_reply("@Delta thanks, but it still doesn't work") is True
    assert needs_reply("@Delta thanks for your help, can you also check my seat?") is True
    assert needs_reply("@Delta I think I figured it out. Would that mean I check in with Aeromexico?") is True


def test_a_message_addressed_to_a_brand_with_no_other_signal_needs_a_reply() -> None:
    assert needs_reply("@VirginAtlantic The first two weeks of June") is True
    assert needs_reply("The first two weeks of June") is False  # addressed to nobody


def test_brand_asks() -> None:
    assert brand_asks("@1 Can you DM us your order number? ^JA") is True
    assert brand_asks("@1 We're sorry to hear that. Please send us a DM with your email.") is True
    assert brand_asks("@1 Let us know if that helps") is True
    assert brand_asks("@1 Glad we could help! Have a great day ^JA") is False
    assert brand_asks("@1 Thanks for flying with us!") is False
    assert brand_asks(None) is False
    assert brand_asks("") is False


def test_render_is_an_aligned_table() -> None:
    e = Evaluation(tp=8, fp=1, tn=3, fn=2, misclassified=["11", "12", "13"])
    out = render(e)
    assert e.accuracy == pytest.approx(11 / 14)
    assert e.recall_reply == pytest.approx(0.8) and e.precision_reply == pytest.approx(8 / 9)
    assert e.recall_no_reply == pytest.approx(0.75) and e.precision_no_reply == pytest.approx(0.6)
    lines = out.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "support"]
    assert lines[1].split()[-3:] == ["0.889", "0.800", "10"] and lines[2].split()[-3:] == ["0.600", "0.750", "4"]
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    assert "misclassified=3" in out and "11 12 13" in out


def test_command_reports_missing_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(needs_reply_command, ["--shared", str(tmp_path)])
    assert result.exit_code != 0
    assert "labels not found" in result.output


# Floors reached on the 250 public labels (178 need a reply, 72 do not) when the rules were written:
# accuracy 0.916, recall(needs reply) 0.989, recall(no reply) 0.736; rounded down to 2 decimals so a
# rule change that loses ground on either class fails here.
ACCURACY_FLOOR = 0.85
RECALL_REPLY_FLOOR = 0.98
RECALL_NO_REPLY_FLOOR = 0.73


@pytest.mark.skipif(
    not LABELS_DIR.is_dir(), reason=f"hand-labelled needs-reply data not present at {LABELS_DIR} (shared folder)"
)
def test_on_the_hand_labels() -> None:
    e = evaluate(SHARED)
    assert e.total == 250
    assert e.accuracy >= ACCURACY_FLOOR, render(e)
    assert e.recall_reply >= 0.95, render(e)
    assert e.recall_reply >= RECALL_REPLY_FLOOR, render(e)
    assert e.recall_no_reply >= RECALL_NO_REPLY_FLOOR, render(e)
    result = CliRunner().invoke(needs_reply_command, ["--shared", str(SHARED)])
    assert result.exit_code == 0 and "needs reply" in result.output
