"""Deterministic synthetic data for the local demo (no external data set).

``generate()`` yields JSON lines of canonical :class:`~schemas.interaction.Interaction` events — the
``jsonl`` input format of ``rapport replay`` — for a few brands on x, facebook and instagram over a
couple of weeks. The data is made up but behaves like the real thing, so the demo makes the
product's point: *reach is not engagement*. Every brand posts and gets likes, but the brands differ
in whether (and how fast) they answer the people who write to them, so every care metric (reply rate,
first-response median and p90, answered within 1 h / 24 h, SLA breaches, backlog) and every figure of
"engagement versus reach" (response equity by follower tier, conversation versus broadcast, canned
replies, sentiment shift after a reply, returning customers, reach) has a brand that stands out. The
names hint at the habits:

=============== ================= ============================================================
brand           habit             what it does
=============== ================= ============================================================
SwiftBank       attentive         answers nearly every message that needs a reply, in minutes,
                                  and its agents write every reply themselves (personal: hardly
                                  any reply is canned)
VIPGlow         influencer_only   answers accounts with 10k+ followers first: nearly all of them,
                                  within minutes; rarely anyone else, and then hours later
BlackoutEnergy  outage            answers most people within the hour, but its care team goes
                                  dark for 9 hours on the middle day (08:00–17:00 UTC): no
                                  reply at all while customers keep writing (some twice:
                                  "is anyone there?"), then a slow catch-up over the evening;
                                  a quarter of the held-up messages are never answered
MegaphoneMotors broadcaster       posts all day to a huge audience, almost never replies: most
                                  of what it sends is broadcast
SnailTel        slow              answers most people, but hours (sometimes a day) later, and
                                  with templates: "Sorry to hear that @x, please DM us your
                                  account number and we'll look into it" (most replies canned)
FirefightAir    firefighter       answers complaints quickly, ignores questions and praise; its
                                  customers mostly write in angry, and its replies turn them
                                  around (the follow-up after its reply is usually happy)
=============== ================= ============================================================

The other brands answer with a mix of their templates and personal replies; their customers come back
after a reply happy less often than FirefightAir's (an unhappy follow-up is as angry as the complaint).

What is generated, per brand and customer:

- brand **posts** (outbound broadcasts, no customer) with impressions / likes / shares / replies counts;
- customer **reactions**, **shares** (no text) of those posts and **follows** of the brand: reach
  signals, never conversation;
- customer **comments** on posts and **mentions** of the brand. About two thirds need a reply
  (complaints, questions, requests), the rest do not (thanks, praise, emoji-only); brands answer
  those only now and then, out of courtesy;
- the brand's **replies** (``parent_id`` = the customer's message, ``customer_id`` = that customer) and
  the rest of the conversation: a brand often asks for details ("Can you DM us your order number?"),
  the customer answers ("done, sent"; after a complaint, angrily or gratefully, by how well the brand
  turns people around: a message that needs a reply again) and the brand closes the case; or the
  customer says thanks (no reply needed) or that it still does not work. A reply is personal (composed
  by an agent: its own words, a case number, a time, a signature) or one of the brand's templates, by
  the brand's ``personal_share``.

Customers write to a brand several times over the period (each message that is not a reply opens a
new conversation), so most of them are returning customers, and the attentive brands answer them in
several conversations.

Customers' follower counts have a heavy tail and span the tiers of the equity metric: many under 100,
some 100–999 and 1k–9,999, a few influencers with 10k or more, a handful with 100k or more. Half of the
facebook customers show no follower count (a personal profile): their events carry ``author_followers``
None (the ``unknown`` tier); the brands still see how big they are.

``post_updates()`` gives the later versions the platforms report of some posts (same ``event_id``, a later
``updated_at``, grown impressions, likes and shares): ``streams/local/demo_webhooks.py`` delivers them through
the canonical webhook, as a metrics poller would, with the platforms' own reaction, share and follow events.
They are not in the replay file, which holds every event once.

A small deterministic fraction of the lines (~0.5%) is deliberately bad — invalid JSON, a missing
``brand``, a ``created_at`` without timezone, an unknown ``kind`` — so the demo also shows the
dead-letter path.

Everything comes from one ``random.Random(seed)``: the same arguments give byte-identical output.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from schemas.interaction import Interaction

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
FOLLOWER_TIERS = (100, 1_000, 10_000)
"""Lower bounds of the follower tiers after the first: <100, 100–999, 1k–9,999, 10k+."""
FOLLOWER_TIER_WEIGHTS = (45, 30, 17, 8)
"""How many customers (relative) fall in each follower tier."""
INFLUENCER_FOLLOWERS = FOLLOWER_TIERS[-1]
"""Customers with at least this many followers count as influencers."""
INFLUENCER_TAIL = 0.75
"""Pareto shape of the influencers' follower counts (from 10k): about one in six has 100k or more."""
MAX_FOLLOWERS = 3_000_000
HIDDEN_FOLLOWERS_SHARE = {"facebook": 0.5}
"""Share of a platform's customers whose events carry no follower count (``author_followers`` None)."""
OUTAGE_START_HOUR = 8
"""A brand with ``outage_hours`` stops answering at this UTC hour of the middle day of the window."""
OUTAGE_LOST_SHARE = 0.25
"""Share of the messages caught by an outage that the brand never answers."""
BAD_LINE_SHARE = 0.005
BAD_LINE_KINDS = ("invalid_json", "missing_brand", "naive_created_at", "unknown_kind")

PLATFORMS = ("x", "facebook", "instagram")
CUSTOMER_PLATFORM_WEIGHTS = (0.5, 0.25, 0.25)

Intent = Literal["complaint", "question", "request", "answer", "thanks", "praise", "emoji"]
"""What a customer message is: ``answer`` is a customer's answer to a brand's question ("done, sent")."""
OPENINGS: tuple[Intent, ...] = ("complaint", "question", "request", "thanks", "praise", "emoji")
"""What a customer's first message in a conversation can be."""
OPENING_WEIGHTS = (0.30, 0.21, 0.14, 0.12, 0.15, 0.08)
NEEDS_REPLY: frozenset[Intent] = frozenset({"complaint", "question", "request", "answer"})
"""Intents a care team should answer; the others (thanks, praise, emoji) need no reply."""
COURTESY_SHARE = 0.35
"""A brand answers a message that needs no reply with this fraction of its usual answer rate."""
ASK_CHANCE: dict[Intent, float] = {"complaint": 0.5, "request": 0.4, "question": 0.2}
"""Chance that the brand's first answer asks the customer for details (a DM with a reference)."""
MAX_BRAND_TURNS = 3
"""At most this many brand replies in one conversation."""
CONTENT_HAPPY_CHANCE = 0.75
"""Chance that a follow-up after a reply is happy when the conversation did not open with a complaint."""
ANSWER_MOOD_SHARE = 0.7
"""A customer who complained answers a brand's question angrily with this share of ``1 - turnaround``,
gratefully with this share of ``turnaround``, plainly otherwise ("done, sent")."""


def follower_tier(followers: int) -> int:
    """0: under 100, 1: 100–999, 2: 1k–9,999, 3: 10k and more."""
    return bisect.bisect_right(FOLLOWER_TIERS, followers)


# --- the brands ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Persona:
    """A brand and its social-media habits."""

    brand: str
    habit: str
    description: str
    topics: tuple[str, ...]
    """What customers write about (fills ``{topic}`` in the message templates)."""
    products: tuple[str, ...]
    """What the brand posts about."""
    reference: str
    """What the brand asks customers to DM ("Can you DM us your {reference}?")."""
    answer_rate: float
    """Chance that the brand answers an ordinary customer message that needs a reply."""
    median_delay_minutes: float
    """Typical time to answer; actual delays are lognormal around it."""
    delay_spread: float = 0.8
    """Sigma of the log delay: 0.5 = fairly regular, 1.2 = anything from minutes to a day."""
    tier_answer_rates: tuple[float, float, float, float] | None = None
    """Answer rates by the customer's follower tier (``follower_tier``); None: ``answer_rate``."""
    complaint_answer_rate: float | None = None
    """Answer rate for complaints (None: ``answer_rate``)."""
    outage_hours: float = 0
    """The care team is out this long from ``OUTAGE_START_HOUR`` on the middle day: no replies at all."""
    catch_up_minutes: float = 120
    #: Its care team writes only Mon–Fri within these UTC hours (SnailTel: DEMO_CARE's 09:00–17:30 London, which
    #: is UTC in January), so an answer due outside them goes out after the next opening.
    office_hours: tuple[float, float] | None = None
    """Typical wait after the outage for the messages it held up."""
    influencer_pull: float = 0
    """Chance that an influencer customer talks to this brand too (besides the brands drawn at random)."""
    posts_per_day: float = 1.0
    brand_followers: int = 50_000
    post_reach: int = 20_000
    """Median impressions of a post."""
    tier_delay_factors: tuple[float, float, float, float] | None = None
    """Multipliers of ``median_delay_minutes`` by the customer's follower tier (None: 1 for every tier)."""
    personal_share: float = 0.5
    """Share of the brand's replies an agent writes personally; the rest come from its templates."""
    templates: Literal["standard", "canned"] = "standard"
    """The brand's templates: ``standard`` (a few per intent, with the customer's name) or ``canned`` (one
    apology that sends everyone to DMs, whatever they wrote)."""
    opening_weights: tuple[float, ...] = OPENING_WEIGHTS
    """How likely each of ``OPENINGS`` is as a customer's first message to this brand."""
    follow_up_chance: float = 0.35
    """Chance that the customer writes again after a reply that did not ask for anything."""
    turnaround: float = 0.3
    """Chance that a customer who complained is happy in that follow-up (otherwise as angry as before)."""

    def answer_probability(self, followers: int, opening: Intent, message: Intent | None = None) -> float:
        """Chance that the brand answers ``message`` (default: ``opening``) of a conversation opened by ``opening``."""
        if self.tier_answer_rates is not None:
            rate = self.tier_answer_rates[follower_tier(followers)]
        elif self.complaint_answer_rate is not None and opening == "complaint":
            rate = self.complaint_answer_rate
        else:
            rate = self.answer_rate
        return rate if (message or opening) in NEEDS_REPLY else COURTESY_SHARE * rate

    def delay_minutes(self, followers: int) -> float:
        """The brand's typical time to answer a customer with ``followers``."""
        factor = 1.0 if self.tier_delay_factors is None else self.tier_delay_factors[follower_tier(followers)]
        return self.median_delay_minutes * factor


PERSONAS: tuple[Persona, ...] = (
    Persona(
        brand="SwiftBank",
        habit="attentive",
        description="answers nearly every message that needs a reply, within minutes",
        topics=("card", "transfer", "app login", "savings account", "statement"),
        products=("mobile app", "savings account", "travel card"),
        reference="account number",
        answer_rate=0.97,
        median_delay_minutes=7,
        delay_spread=0.7,
        posts_per_day=1.0,
        brand_followers=120_000,
        post_reach=30_000,
        personal_share=1.0,
    ),
    Persona(
        brand="VIPGlow",
        habit="influencer_only",
        description="answers accounts with 10k+ followers first, rarely anyone else",
        topics=("order", "foundation shade", "delivery", "lipstick", "gift card"),
        products=("serum", "spring palette", "lip oil"),
        reference="order number",
        answer_rate=0.05,
        tier_answer_rates=(0.03, 0.06, 0.2, 0.92),
        influencer_pull=0.5,
        median_delay_minutes=40,
        tier_delay_factors=(4.0, 3.0, 1.5, 0.4),
        posts_per_day=1.5,
        brand_followers=400_000,
        post_reach=90_000,
    ),
    Persona(
        brand="BlackoutEnergy",
        habit="outage",
        description="answers most people within the hour, but goes dark for 9 hours mid-period",
        topics=("bill", "smart meter", "direct debit", "meter reading", "tariff"),
        products=("green tariff", "smart meter", "heat pump offer"),
        reference="account number",
        answer_rate=0.85,
        median_delay_minutes=30,
        delay_spread=0.8,
        outage_hours=9,
        catch_up_minutes=150,
        posts_per_day=1.5,
        brand_followers=60_000,
        post_reach=12_000,
    ),
    Persona(
        brand="MegaphoneMotors",
        habit="broadcaster",
        description="posts all day to a huge audience, almost never replies",
        topics=("charging", "service booking", "delivery date", "software update", "test drive"),
        products=("Volt S", "home charger", "Volt X crossover"),
        reference="vehicle registration",
        answer_rate=0.03,
        median_delay_minutes=180,
        posts_per_day=6.0,
        brand_followers=2_000_000,
        post_reach=400_000,
    ),
    Persona(
        brand="SnailTel",
        habit="slow",
        description="answers most people, but hours (sometimes a day) later, with templates",
        topics=("bill", "signal", "roaming", "contract", "router"),
        products=("5G plan", "fibre router", "family bundle"),
        reference="account number",
        answer_rate=0.8,
        median_delay_minutes=8 * 60,
        delay_spread=0.7,
        office_hours=(9.0, 17.5),
        posts_per_day=1.0,
        brand_followers=80_000,
        post_reach=15_000,
        personal_share=0.1,
        templates="canned",
    ),
    Persona(
        brand="FirefightAir",
        habit="firefighter",
        description="answers complaints quickly and turns the customers around, ignores questions and praise",
        topics=("flight", "luggage", "refund", "booking", "seat"),
        products=("summer fares", "city breaks", "airport lounge"),
        reference="booking reference",
        answer_rate=0.08,
        complaint_answer_rate=0.85,
        median_delay_minutes=35,
        posts_per_day=1.0,
        brand_followers=250_000,
        post_reach=40_000,
        opening_weights=(0.45, 0.17, 0.11, 0.08, 0.12, 0.07),
        follow_up_chance=0.65,
        turnaround=0.92,
    ),
)
PERSONAS_BY_HABIT = {p.habit: p for p in PERSONAS}


# --- the texts ------------------------------------------------------------------------------------

MENTIONS: dict[Intent, tuple[str, ...]] = {
    "complaint": (
        "@{brand} my {topic} has been broken since yesterday and nobody helps. Terrible service 😡",
        "@{brand} third time asking: what is going on with my {topic}? This is ridiculous.",
        "Really disappointed with @{brand}, the {topic} failed again. Awful.",
        "@{brand} why is the {topic} still not working?? So frustrating",
        "@{brand} worst experience ever with your {topic} 👎",
        "@{brand} I waited two hours about my {topic} and got nothing. Unacceptable.",
    ),
    "question": (
        "@{brand} quick question: how do I change my {topic}?",
        "@{brand} is there a way to check my {topic} online?",
        "Hey @{brand}, does the {topic} work abroad?",
        "@{brand} who can I talk to about my {topic}?",
        "@{brand} how long does a {topic} change usually take?",
    ),
    "request": (
        "@{brand} please can someone call me back about my {topic}?",
        "@{brand} can you check my {topic} for me please? Details in DM",
        "@{brand} I need help with my {topic} today, please get in touch",
        "@{brand} please escalate my {topic} case, I want this resolved this week",
    ),
    "thanks": (
        "@{brand} thanks for the help with my {topic} yesterday!",
        "Cheers @{brand}, all sorted now 👍",
        "@{brand} thanks for sorting my {topic} so quickly, amazing team",
        "@{brand} thank you, got it!",
    ),
    "praise": (
        "@{brand} love the {product}, great job! 😍",
        "Shoutout to @{brand}, the {product} is brilliant. Thank you!",
        "@{brand} really impressed with the {product} 🙌",
    ),
    "emoji": ("@{brand} 😍😍😍", "@{brand} 🔥🔥", "@{brand} 🙌", "@{brand} ❤️", "@{brand} 👏👏👏"),
}
COMMENTS: dict[Intent, tuple[str, ...]] = {
    "complaint": (
        "Maybe fix my {topic} before posting ads 🙄",
        "Nice post, but my {topic} is still broken. Disappointed.",
        "Meh. Prices keep going up and the {topic} keeps getting worse.",
    ),
    "question": (
        "Will this be available in my city?",
        "Does this work with my {topic}?",
        "How much is it?",
    ),
    "request": (
        "Can someone DM me about my {topic} please?",
        "Please send me the price list, I'd like to order",
    ),
    "thanks": ("Thanks for sharing!", "Thank you, that's helpful 👍"),
    "praise": ("Love this! 😍", "Looks great!", "Can't wait to try it 🙌", "Brilliant, well done"),
    "emoji": ("😍", "🔥🔥🔥", "👏👏", "❤️❤️"),
}
REPLIES: dict[Intent, tuple[str, ...]] = {
    "complaint": (
        "So sorry {name}! Our team is looking into your {topic} right now.",
        "Hi {name}, apologies for this. We've escalated your {topic} case and will update you today.",
    ),
    "question": (
        "Hi {name}! You can manage your {topic} in the app under Settings. Happy to help further 🙂",
        "Good question {name}: yes, details are on our help page. Let us know if anything is unclear!",
        "Hi {name}, we've sent you a DM with the steps for your {topic}.",
    ),
    "request": (
        "Hi {name}, of course. We've passed your {topic} request to the team and will be in touch today.",
        "Thanks {name}, we've noted this and someone will call you back within 24 hours.",
    ),
    "thanks": ("You're welcome, {name}! 😊", "Anytime, {name}. Have a great day!"),
    "praise": (
        "Thank you so much, {name}! 💙",
        "That's great to hear {name}, thanks for the kind words!",
        "You made our day, {name} 😊",
    ),
    "emoji": ("💙", "Thank you, {name}! 🙌"),
}
ASKS = (
    "Sorry to hear that, {name}. Can you DM us your {reference}?",
    "Hi {name}, we'd like to help. Could you DM us your {reference} so we can look into your {topic}?",
    "Hi {name}, can you send us your {reference} in a DM? We'll check it straight away.",
)
"""The brand asks for details: the customer's answer keeps the case open."""
NUDGES = (
    "@{brand} hello?? Still waiting for an answer about my {topic}",
    "@{brand} is anyone there? Nobody has replied about my {topic} 😡",
    "@{brand} hours and still no reply. Is your support team down?",
)
"""A customer writes again when the brand's care team is out (a complaint: it needs a reply)."""
NUDGE_CHANCE = 0.5
CUSTOMER_ANSWERS = ("done, sent", "Done, sent 👍", "DM sent!", "Just sent it over DM", "Sent you the details now")
"""The customer's answer to a brand's question: it needs a reply."""
ANNOYED_ANSWERS = (
    "DM sent, for the third time. Pathetic, awful service",
    "Sent. Why do I have to repeat everything? Terrible service, really angry",
    "Sent AGAIN. Worst service ever, nobody reads anything 😡",
)
"""The answer of a customer who complained and is fed up of being asked (as negative as the complaint)."""
GRATEFUL_ANSWERS = (
    "DM sent, thank you for the quick help! 🙏",
    "Sent! Thanks so much for getting back to me so fast",
    "Done, sent. Really appreciate you looking into it 🙂",
)
"""The answer of a customer who complained and whom the brand's reply already calmed down."""
FOLLOW_UPS_HAPPY = (
    "Thanks, that fixed it! 🙏",
    "Great, thank you for the quick answer",
    "Perfect, thanks!",
    "Wow, thank you so much, you turned my day around! 🙏",
    "Sorted! Really appreciate the help, great team",
)
FOLLOW_UPS_UNHAPPY = (
    "Still broken. Worst service ever, never again 😡",
    "I did what you said and it's still the same. Useless, terrible 😤",
    "That doesn't help at all, really annoyed",
    "Still the same problem. Horrible, I hate this",
)
"""Still not solved: as angry as a complaint (VADER about −0.6 to −0.9), so the shift after the reply is not up."""
SECOND_REPLIES: dict[Intent, tuple[str, ...]] = {
    "answer": (
        "Thanks {name}, got it. We've sorted your {topic}; you'll get a confirmation shortly.",
        "Thanks {name}! We found the problem with your {topic} and fixed it on our side.",
    ),
    "complaint": (
        "Sorry {name}, we're checking again and will get back to you shortly.",
        "We're really sorry {name}. A specialist will contact you today about your {topic}.",
    ),
    "thanks": ("Thanks for letting us know {name}, glad we could help!", "Glad it's sorted, {name}! 💙"),
}
"""The brand's later answers, by the customer's follow-up (``answer``, unhappy ``complaint``, ``thanks``)."""

# The ``canned`` templates: one apology that sends everyone to DMs, with small variations (Jaccard of their
# words ≥ 0.8 with each other once the @handle is removed, so the canned-reply rule flags all but the first).
CANNED_FIRST = (
    "Sorry to hear that @{handle}, please DM us your {reference} and we'll look into it.",
    "Hi @{handle}, sorry to hear that. Please DM us your {reference} and we'll look into it.",
    "@{handle} Sorry to hear that! Please DM us your {reference} and we'll look into it for you.",
    "Sorry to hear that @{handle}. Please DM us your {reference} and we'll look into it 🙂",
)
CANNED_COURTESY = (
    "Thanks for reaching out @{handle}, we're always here to help!",
    "@{handle} Thanks for reaching out! We're always here to help.",
)
CANNED_SECOND: dict[Intent, tuple[str, ...]] = {
    "answer": (
        "Thanks @{handle}, we've received your details and passed them to the relevant team.",
        "Thanks @{handle}! We've received your details and passed them on to the relevant team.",
    ),
    "complaint": (
        "We're sorry you're still having trouble @{handle}, please DM us your {reference} and we'll look into it.",
        "@{handle} We're sorry you're still having trouble. Please DM us your {reference} and we'll look into it.",
    ),
    "thanks": ("Glad we could help @{handle}, have a great day!", "@{handle} Glad we could help, have a great day!"),
}

# Personal replies: an agent writes them, so they are composed of short parts (an opener with the customer's
# name and topic, what the agent did with a case number and a time, a signature). Two with the same opener and
# action still differ in about five of their ~20 words (name, topic, case, time, agent): Jaccard well below 0.8.
AGENTS = ("Jess", "Tom", "Amira", "Ben", "Kofi", "Lena", "Raj", "Mei", "Dan", "Sara", "Ines", "Olu")
TEAMS = ("payments", "technical", "billing", "care", "specialist", "operations")
MINUTES = ("00", "15", "30", "45")
SIGN_OFFS = ("^{agent}", "– {agent}", "{agent} at {brand}", "Speak soon, {agent}")
PERSONAL_OPENERS: dict[Intent, tuple[str, ...]] = {
    "complaint": (
        "{name}, so sorry your {topic} let you down again.",
        "Oh no {name}, a broken {topic} is the last thing you need.",
        "Hi {name}, sorry about the {topic}, that's not good enough.",
        "{name}, I hear you: the {topic} should just work.",
        "Hello {name}, apologies for the {topic} hassle.",
    ),
    "question": (
        "Hi {name}, good question about the {topic}!",
        "Hey {name}, happy to explain the {topic}.",
        "{name}, thanks for checking on the {topic} first.",
        "Hello {name}, glad you asked about the {topic}.",
    ),
    "request": (
        "Of course {name}, happy to help with the {topic}.",
        "Hi {name}, leave the {topic} with me.",
        "{name}, no problem, I'm on your {topic} now.",
        "Hello {name}, thanks for the {topic} details.",
    ),
    "thanks": (
        "Aw, thanks {name}!",
        "Lovely to hear about the {topic}, {name}.",
        "{name}, you're very welcome.",
        "Cheers {name}, glad the {topic} is sorted.",
    ),
    "praise": (
        "Thank you {name}, that means a lot!",
        "{name}, so glad you like the {product}!",
        "Love hearing this {name}!",
        "Thanks {name}, I'll tell the {product} team.",
    ),
    "emoji": ("Right back at you {name}!", "{name}, this made us smile.", "Thanks for the love {name}!"),
}
PERSONAL_ACTIONS: dict[Intent, tuple[str, ...]] = {
    "complaint": (
        "Case {case} is open and I'll check it myself by {time}.",
        "I've reset it under ref {case}, try again after {time}?",
        "Our {team} team has it as case {case}; news by {time}.",
        "Logged as case {case}, I'll update you by {time}.",
    ),
    "question": (
        "Yes: the steps are in the app under Help (note {case}), and I'm here till {time}.",
        "About two working days; nothing blocks yours, I checked at {time} (ref {case}).",
        "App, Profile, then {topic}: a minute. Stuck? I'm here till {time} (ref {case}).",
    ),
    "request": (
        "Call back booked for {time} {day}, case {case}.",
        "Raised as case {case}, sorted before {time}.",
        "Passed to our {team} team as case {case}, they'll call by {time}.",
    ),
}
PERSONAL_COURTESY = (
    "Enjoy your {day}!",
    "Shout any time, even on a {day} night.",
    "More good stuff coming this {day}.",
    "Have a lovely {day}!",
    "Happy {day} from all of us!",
)
PERSONAL_ASKS = (
    "Could you DM me your {reference}? Case {case} is open till {time}.",
    "Can you send your {reference} over DM? I'm on till {time} (ref {case}).",
    "DM me your {reference} and I'll reply by {time}, case {case}.",
)
PERSONAL_SECOND: dict[Intent, tuple[str, ...]] = {
    "answer": (
        "Got it {name}. Found the {topic} problem and fixed it at {time} (case {case}).",
        "Thanks {name}, your {topic} should be back to normal by {time}, ref {case}.",
        "Perfect {name}, case {case} updated; confirmation before {time}.",
    ),
    "complaint": (
        "{name}, sorry it's still not right: case {case} is escalated, call by {time}.",
        "Not on, {name}. Case {case} reopened and I'll call before {time}.",
    ),
    "thanks": (
        "Brilliant, glad your {topic} is sorted {name}! Closing case {case}.",
        "Great news about the {topic}, {name}. Enjoy your {day}!",
        "Happy to help {name}, case {case} closed at {time}.",
    ),
}
POSTS = (
    "Meet the new {product} ✨ Available today.",
    "Weekend offer: 20% off the {product}! Don't miss it.",
    "5 ways to get more out of your {product} 👇",
    "We're proud of the {product}. Tell us what you think!",
    "Big news is coming for the {product}... stay tuned 👀",
    "{brand} is hiring! Join the team behind the {product}.",
)
FIRST_NAMES = (
    "maria", "james", "aisha", "liam", "sofia", "noah", "chen", "emma", "omar", "lucas", "yuki", "olivia",
    "mateo", "zara", "ivan", "nina", "tom", "priya", "leo", "ana", "sam", "fatima", "jonas", "elena",
)  # fmt: skip

#: Customer activity is lower at night: relative weight of each UTC hour.
HOUR_WEIGHTS = (3, 3, 3, 3, 3, 3, 3, 5, 7, 8, 8, 8, 9, 8, 8, 8, 8, 9, 9, 9, 8, 6, 4, 3)


# --- the people ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Brand:
    persona: Persona
    name: str
    page_id: int
    """Numeric page id, part of facebook event ids."""


@dataclass(frozen=True)
class Customer:
    platform: str
    author_id: str
    handle: str
    name: str
    followers: int
    """How many followers the customer has (what the brands see on the profile)."""
    brands: tuple[int, ...]
    """Indexes of the brands this customer talks to."""
    chattiness: float
    """Messages per brand per week."""
    shows_followers: bool = True
    """False: the platform reports no follower count for this customer (``author_followers`` None)."""

    @property
    def reported_followers(self) -> int | None:
        return self.followers if self.shows_followers else None


# --- building the events --------------------------------------------------------------------------


@dataclass
class _Generator:
    rng: random.Random
    start: datetime
    end: datetime
    brands: list[Brand] = field(default_factory=list)
    customers: list[Customer] = field(default_factory=list)
    events: list[tuple[datetime, int, Interaction]] = field(default_factory=list)
    seq: int = 0

    # --- ids and times

    def next_native_id(self, platform: str, brand: Brand, at: datetime) -> str:
        """A unique, platform-looking native id (x: snowflake, facebook: page_post, instagram: 17 digits)."""
        self.seq += 1
        if platform == "x":
            ms = int(at.timestamp() * 1000) - 1_288_834_974_657  # X's snowflake epoch
            return str((ms << 22) | (self.seq & 0x3FFFFF))
        if platform == "facebook":
            return f"{brand.page_id}_{10**15 + self.seq * 997 + self.rng.randrange(997)}"
        return str(17_840_000_000_000_000 + self.seq * 1_000 + self.rng.randrange(1_000))

    def random_moment(self) -> datetime:
        """A random second in the window, more likely in the daytime."""
        days = (self.end - self.start).days
        day = self.rng.randrange(days)
        hour = self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        return self.start + timedelta(days=day, hours=hour, seconds=self.rng.randrange(3600))

    def later(self, at: datetime, median_minutes: float, spread: float) -> datetime:
        minutes = self.rng.lognormvariate(math.log(median_minutes), spread)
        return at + timedelta(seconds=max(20, int(minutes * 60)))

    def outage(self, persona: Persona) -> tuple[datetime, datetime] | None:
        """When the brand's care team is out (None: never)."""
        if not persona.outage_hours:
            return None
        begin = self.start + timedelta(days=(self.end - self.start).days // 2, hours=OUTAGE_START_HOUR)
        return begin, begin + timedelta(hours=persona.outage_hours)

    def answer_time(self, brand: Brand, asked_at: datetime, followers: int) -> datetime | None:
        """When the brand answers a message written at ``asked_at`` by a customer with ``followers`` (None: lost
        in an outage's backlog)."""
        persona = brand.persona
        at = self.later(asked_at, persona.delay_minutes(followers), persona.delay_spread)
        outage = self.outage(persona)
        if persona.office_hours is not None:
            at = self.in_office(at, persona.office_hours)
        if outage is None or at < outage[0] or asked_at >= outage[1]:
            return at
        # The answer would fall in the outage (or the message waited through it): it waits for the catch-up.
        if self.rng.random() < OUTAGE_LOST_SHARE:
            return None
        return max(at, self.later(outage[1], persona.catch_up_minutes, 0.8))

    def in_office(self, at: datetime, hours: tuple[float, float]) -> datetime:
        """``at`` if it is within office hours (Mon–Fri, UTC), else a few minutes to an hour after the next opening."""
        opens, closes = hours
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        if at.weekday() < 5 and day + timedelta(hours=opens) <= at < day + timedelta(hours=closes):
            return at
        if at >= day + timedelta(hours=opens):
            day += timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        return day + timedelta(hours=opens, seconds=self.rng.randrange(300, 3600))

    def poisson(self, mean: float) -> int:
        """A Poisson-distributed count (Knuth's method; normal approximation for large means)."""
        if mean > 30:
            return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        limit, k, p = math.exp(-mean), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    def add(self, at: datetime, **fields: Any) -> Interaction | None:
        """Record an event; events after the end of the window have not happened yet (None)."""
        if at >= self.end:
            return None
        event = Interaction(created_at=at, **fields)
        self.events.append((at, len(self.events), event))
        return event

    # --- people

    def make_brands(self, count: int) -> None:
        for index in range(count):
            persona = PERSONAS[index % len(PERSONAS)]
            suffix = "" if index < len(PERSONAS) else str(index // len(PERSONAS) + 1)
            self.brands.append(Brand(persona, persona.brand + suffix, 100_000_000 + 7_919 * (index + 1)))

    def followers(self) -> int:
        """A follower count: a tier drawn by ``FOLLOWER_TIER_WEIGHTS``, log-uniform in it; influencers Pareto
        (shape ``INFLUENCER_TAIL``: a heavy tail, up to ``MAX_FOLLOWERS``)."""
        tier = self.rng.choices(range(len(FOLLOWER_TIER_WEIGHTS)), weights=FOLLOWER_TIER_WEIGHTS)[0]
        if tier == len(FOLLOWER_TIERS):
            return min(MAX_FOLLOWERS, int(INFLUENCER_FOLLOWERS * self.rng.paretovariate(INFLUENCER_TAIL)))
        low, high = (1, *FOLLOWER_TIERS)[tier], FOLLOWER_TIERS[tier]
        return min(high - 1, int(low * (high / low) ** self.rng.random()))

    def make_customers(self, count: int) -> None:
        taken: set[str] = set()
        for _ in range(count):
            platform = self.rng.choices(PLATFORMS, weights=CUSTOMER_PLATFORM_WEIGHTS)[0]
            author_id = str(self.rng.randrange(10**8, 10**10))
            while platform + author_id in taken:
                author_id = str(self.rng.randrange(10**8, 10**10))
            taken.add(platform + author_id)
            name = self.rng.choice(FIRST_NAMES)
            followers = self.followers()
            how_many = self.rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
            chosen = set(self.rng.sample(range(len(self.brands)), min(how_many, len(self.brands))))
            if followers >= INFLUENCER_FOLLOWERS:
                chosen |= {i for i, b in enumerate(self.brands) if self.rng.random() < b.persona.influencer_pull}
            brands = tuple(sorted(chosen))
            self.customers.append(
                Customer(
                    platform=platform,
                    author_id=author_id,
                    handle=f"{name}_{author_id[-3:]}",
                    name=name.capitalize(),
                    followers=followers,
                    brands=brands,
                    chattiness=self.rng.choice((1.0, 1.5, 2.5, 3.5, 5.0)),
                    shows_followers=self.rng.random() >= HIDDEN_FOLLOWERS_SHARE.get(platform, 0.0),
                )
            )

    def fans(self, brand_index: int, platform: str) -> list[Customer]:
        return [c for c in self.customers if c.platform == platform and brand_index in c.brands]

    # --- events

    def customer_fields(self, customer: Customer, brand: Brand) -> dict[str, Any]:
        return {
            "platform": customer.platform,
            "brand": brand.name,
            "author_id": customer.author_id,
            "author_handle": customer.handle,
            "author_followers": customer.reported_followers,
            "direction": "inbound",
            "customer_id": customer.author_id,
        }

    def brand_fields(self, platform: str, brand: Brand, customer: Customer | None) -> dict[str, Any]:
        return {
            "platform": platform,
            "brand": brand.name,
            "author_id": brand.name,
            "author_handle": brand.name,
            "author_followers": brand.persona.brand_followers,
            "direction": "outbound",
            "customer_id": customer.author_id if customer else None,
        }

    def conversation(
        self, brand: Brand, customer: Customer, message: Interaction, intent: Intent, topic: str, nudge: bool = True
    ) -> None:
        """The brand may answer ``message``; the customer may answer back, and so on.

        The brand answers with its habit's probability for the opening ``intent`` (a bit less on later
        turns, much less for a message that needs no reply). Its first answer may ask for details; the
        customer then usually sends them ("done, sent"; after a complaint angrily or gratefully, by the
        brand's ``turnaround``). Otherwise the customer sometimes (``follow_up_chance``) writes again:
        thanks, or that it still does not work (after a complaint, happy with the brand's ``turnaround``).
        A customer who writes during the brand's outage may write again (``nudge``) an hour or so later,
        while the outage lasts.
        """
        persona, platform = brand.persona, customer.platform
        root = message.conversation_id or message.event_id
        last, last_intent = message, intent
        for turn in range(MAX_BRAND_TURNS):
            if nudge and last_intent in NEEDS_REPLY:
                nudge = self.maybe_nudge(brand, customer, last, topic)
            chance = persona.answer_probability(customer.followers, intent, last_intent)
            if self.rng.random() >= (0.9 * chance if turn else chance):
                return
            at = self.answer_time(brand, last.created_at, customer.followers)
            if at is None:
                return
            text, asks = self.reply_text(brand, customer, topic, intent, last_intent, turn, at)
            reply = self.add(
                at,
                event_id=f"{platform}:{self.next_native_id(platform, brand, at)}",
                kind="reply",
                text=text,
                parent_id=last.event_id,
                conversation_id=root,
                **self.brand_fields(platform, brand, customer),
            )
            if reply is None or last_intent not in NEEDS_REPLY:
                return  # nothing more to say after a courtesy reply
            if asks:
                if self.rng.random() >= 0.75:
                    return
                answers: tuple[str, ...] = CUSTOMER_ANSWERS
                if intent == "complaint":
                    mood = self.rng.random()
                    if mood < ANSWER_MOOD_SHARE * (1 - persona.turnaround):
                        answers = ANNOYED_ANSWERS
                    elif mood < ANSWER_MOOD_SHARE:
                        answers = GRATEFUL_ANSWERS
                last_intent, text = "answer", self.rng.choice(answers)
            else:
                if self.rng.random() >= persona.follow_up_chance:
                    return
                happy = self.rng.random() < (persona.turnaround if intent == "complaint" else CONTENT_HAPPY_CHANCE)
                last_intent = "thanks" if happy else "complaint"
                text = self.rng.choice(FOLLOW_UPS_HAPPY if happy else FOLLOW_UPS_UNHAPPY)
            at = self.later(reply.created_at, 20, 1.0)
            follow_up = self.add(
                at,
                event_id=f"{platform}:{self.next_native_id(platform, brand, at)}",
                kind="reply",
                text=text,
                parent_id=reply.event_id,
                conversation_id=root,
                **self.customer_fields(customer, brand),
            )
            if follow_up is None:
                return
            last = follow_up

    def reply_text(
        self, brand: Brand, customer: Customer, topic: str, intent: Intent, last_intent: Intent, turn: int, at: datetime
    ) -> tuple[str, bool]:
        """The text of the brand's reply (written at ``at``) on ``turn`` of a conversation opened with ``intent``
        (``last_intent``: the message it answers), and whether it asks the customer for details.

        Personal (``personal_share``): composed by an agent. Otherwise a template: ``canned`` brands send
        everyone who needs help the same apology and a request to DM (so it always asks); ``standard``
        brands have a few templates per intent, with the customer's name.
        """
        persona = brand.persona
        personal = self.rng.random() < persona.personal_share
        if persona.templates == "canned" and not personal:
            asks = not turn and intent in NEEDS_REPLY
            if asks:
                template = self.rng.choice(CANNED_FIRST)
            elif turn:
                template = self.rng.choice(CANNED_SECOND[last_intent])
            else:
                template = self.rng.choice(CANNED_COURTESY)
            return template.format(handle=customer.handle, reference=persona.reference), asks
        asks = not turn and self.rng.random() < ASK_CHANCE.get(intent, 0)
        if not personal:
            if asks:
                template = self.rng.choice(ASKS)
            elif turn:
                template = self.rng.choice(SECOND_REPLIES[last_intent])
            else:
                template = self.rng.choice(REPLIES[intent])
            return template.format(name=customer.name, topic=topic, reference=persona.reference), asks
        if turn:
            parts = [self.rng.choice(PERSONAL_SECOND[last_intent])]
        else:
            opener = self.rng.choice(PERSONAL_OPENERS[intent])
            if asks:
                parts = [opener, self.rng.choice(PERSONAL_ASKS)]
            else:
                parts = [opener, self.rng.choice(PERSONAL_ACTIONS.get(intent, PERSONAL_COURTESY))]
        parts.append(self.rng.choice(SIGN_OFFS))
        text = " ".join(parts).format(
            name=customer.name,
            topic=topic,
            product=self.rng.choice(persona.products),
            reference=persona.reference,
            case=self.rng.randrange(10_000, 100_000),
            time=f"{self.rng.randrange(1, 12)}:{self.rng.choice(MINUTES)}{self.rng.choice(('am', 'pm'))}",
            day=f"{at:%A}",
            agent=self.rng.choice(AGENTS),
            team=self.rng.choice(TEAMS),
            brand=brand.name,
        )
        return text, asks

    def maybe_nudge(self, brand: Brand, customer: Customer, message: Interaction, topic: str) -> bool:
        """Write again if ``message`` came during the brand's outage; False once nudged (once is enough)."""
        outage = self.outage(brand.persona)
        if outage is None or not outage[0] <= message.created_at < outage[1] or self.rng.random() >= NUDGE_CHANCE:
            return True
        at = self.later(message.created_at, 75, 0.5)
        if at >= outage[1]:
            return True
        platform = customer.platform
        nudge = self.add(
            at,
            event_id=f"{platform}:{self.next_native_id(platform, brand, at)}",
            kind="mention",
            text=self.rng.choice(NUDGES).format(brand=brand.name, topic=topic),
            **self.customer_fields(customer, brand),
        )
        if nudge is not None:
            self.conversation(brand, customer, nudge, "complaint", topic, nudge=False)
        return False

    def post(self, brand_index: int) -> None:
        """A brand broadcast with its reach, and what the brand's fans do with it."""
        brand = self.brands[brand_index]
        persona = brand.persona
        platform = self.rng.choice(PLATFORMS)
        at = self.random_moment()
        fans = self.fans(brand_index, platform)
        commenters = [c for c in fans if self.rng.random() < 0.08]
        impressions = int(self.rng.lognormvariate(math.log(persona.post_reach), 0.6))
        likes = int(impressions * self.rng.uniform(0.005, 0.03))
        post = self.add(
            at,
            event_id=f"{platform}:{self.next_native_id(platform, brand, at)}",
            kind="post",
            text=self.rng.choice(POSTS).format(product=self.rng.choice(persona.products), brand=brand.name),
            impressions=impressions,
            likes=likes,
            shares=int(likes * self.rng.uniform(0.05, 0.2)),
            replies=len(commenters),
            **self.brand_fields(platform, brand, None),
        )
        if post is None:
            return
        for fan in fans:
            for kind, chance in (("reaction", 0.3), ("share", 0.04)):
                if self.rng.random() < chance:
                    when = self.later(at, 90, 1.2)
                    self.add(
                        when,
                        event_id=f"{platform}:{self.next_native_id(platform, brand, when)}",
                        kind=kind,
                        parent_id=post.event_id,
                        conversation_id=post.event_id,
                        **self.customer_fields(fan, brand),
                    )
        for fan in commenters:
            intent = self.rng.choices(OPENINGS, weights=persona.opening_weights)[0]
            topic = self.rng.choice(persona.topics)
            when = self.later(at, 60, 1.0)
            comment = self.add(
                when,
                event_id=f"{platform}:{self.next_native_id(platform, brand, when)}",
                kind="comment",
                text=self.rng.choice(COMMENTS[intent]).format(topic=topic),
                parent_id=post.event_id,
                conversation_id=post.event_id,
                **self.customer_fields(fan, brand),
            )
            if comment is not None:
                self.conversation(brand, fan, comment, intent, topic)

    def customer_activity(self, customer: Customer, weeks: float) -> None:
        """Follows and mentions of the customer's brands (and the conversations that follow)."""
        platform = customer.platform
        for brand_index in customer.brands:
            brand = self.brands[brand_index]
            if self.rng.random() < 0.5:
                at = self.random_moment()
                self.add(
                    at,
                    event_id=f"{platform}:{self.next_native_id(platform, brand, at)}",
                    kind="follow",
                    **self.customer_fields(customer, brand),
                )
            for _ in range(self.poisson(customer.chattiness * weeks)):
                intent = self.rng.choices(OPENINGS, weights=brand.persona.opening_weights)[0]
                topic = self.rng.choice(brand.persona.topics)
                product = self.rng.choice(brand.persona.products)
                at = self.random_moment()
                mention = self.add(
                    at,
                    event_id=f"{platform}:{self.next_native_id(platform, brand, at)}",
                    kind="mention",
                    text=self.rng.choice(MENTIONS[intent]).format(brand=brand.name, topic=topic, product=product),
                    **self.customer_fields(customer, brand),
                )
                if mention is not None:
                    self.conversation(brand, customer, mention, intent, topic)

    # --- bad lines

    def bad_line(self, kind: str, template: Interaction) -> bytes:
        """A deliberately invalid copy (with a fresh id) of a customer message."""
        brand = next(b for b in self.brands if b.name == template.brand)
        native = self.next_native_id(template.platform, brand, template.created_at)
        data = template.model_dump(mode="json") | {"event_id": f"{template.platform}:{native}"}
        if kind == "invalid_json":
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            return text[: len(text) // 2].encode()
        if kind == "missing_brand":
            del data["brand"]
        elif kind == "naive_created_at":
            data["created_at"] = data["created_at"].removesuffix("Z")
        elif kind == "unknown_kind":
            data["kind"] = "story_view"
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    def lines(self) -> list[bytes]:
        """Every event in time order, with the bad lines mixed in at random places."""
        self.events.sort(key=lambda item: (item[0], item[1]))
        good = [event.model_dump_json().encode() for _, _, event in self.events]
        messages = [e for _, _, e in self.events if e.kind == "mention"]
        if not messages:
            return good
        count = max(len(BAD_LINE_KINDS), round(BAD_LINE_SHARE * len(good)))
        kinds = [BAD_LINE_KINDS[i % len(BAD_LINE_KINDS)] for i in range(count)]
        bad = [self.bad_line(kind, self.rng.choice(messages)) for kind in kinds]
        positions = set(self.rng.sample(range(len(good) + count), count))
        out: list[bytes] = []
        good_iter, bad_iter = iter(good), iter(bad)
        for index in range(len(good) + count):
            out.append(next(bad_iter) if index in positions else next(good_iter))
        return out


def generate(
    seed: int = 7,
    brands: int = 6,
    customers: int = 400,
    days: int = 14,
    start: datetime = DEFAULT_START,
) -> Iterator[bytes]:
    """JSON lines (bytes, without newline) of demo ``Interaction`` events, plus ~0.5% bad lines.

    Deterministic: the same arguments give byte-identical output. With the defaults, ~10k lines.
    """
    return iter(_generated(seed, brands, customers, days, start).lines())


def _generated(seed: int, brands: int, customers: int, days: int, start: datetime) -> _Generator:
    """The generator after it made every event of ``generate`` (in ``events``, not yet sorted)."""
    if brands < 1 or customers < 1 or days < 1:
        raise ValueError("brands, customers and days must be at least 1")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    start = start.astimezone(UTC).replace(microsecond=0)
    gen = _Generator(rng=random.Random(seed), start=start, end=start + timedelta(days=days))
    gen.make_brands(brands)
    gen.make_customers(customers)
    for brand_index, brand in enumerate(gen.brands):
        for _ in range(gen.poisson(brand.persona.posts_per_day * days)):
            gen.post(brand_index)
    for customer in gen.customers:
        gen.customer_activity(customer, weeks=days / 7)
    return gen


UPDATED_POST_SHARE = 0.4
"""Share of the posts of the last ``UPDATED_POST_DAYS`` whose counters the platforms report again."""
UPDATED_POST_DAYS = 7
POST_UPDATE_DELAY = timedelta(hours=8)
"""The platforms report the grown counters this long after the end of the window (a poller's morning run)."""


def post_updates(
    seed: int = 7,
    brands: int = 6,
    customers: int = 400,
    days: int = 14,
    start: datetime = DEFAULT_START,
) -> list[Interaction]:
    """Later versions of some posts of ``generate(same arguments)``, in time order: the same event (same
    ``event_id``, text and ``created_at``) with ``updated_at`` set to ``POST_UPDATE_DELAY`` after the window and
    grown impressions, likes and shares (a post keeps being seen for days, most in its first two).

    Deterministic, and ``generate``'s output does not depend on it (its own random numbers).
    """
    gen = _generated(seed, brands, customers, days, start)
    rng = random.Random(seed * 1_000_003 + 1)
    reported_at = gen.end + POST_UPDATE_DELAY
    since = gen.end - timedelta(days=UPDATED_POST_DAYS)
    updates = []
    for at, _, post in sorted(gen.events, key=lambda item: (item[0], item[1])):
        if post.kind != "post" or at < since or rng.random() >= UPDATED_POST_SHARE:
            continue
        age_days = (reported_at - at).total_seconds() / 86_400
        growth = 1 + rng.uniform(0.2, 0.8) * (1 - math.exp(-age_days / 2))
        impressions, likes, shares = post.impressions or 0, post.likes or 0, post.shares or 0
        updates.append(
            post.model_copy(
                update={
                    "impressions": int(impressions * growth),
                    "likes": max(likes, int(likes * growth * rng.uniform(0.95, 1.05))),
                    "shares": max(shares, int(shares * growth * rng.uniform(0.9, 1.1))),
                    "updated_at": reported_at,
                }
            )
        )
    return updates


def write_demo_file(path: Path, **kwargs: Any) -> int:
    """Write ``generate(**kwargs)`` to ``path`` as a JSON-lines file; return the number of lines."""
    lines: Sequence[bytes] = list(generate(**kwargs))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return len(lines)
