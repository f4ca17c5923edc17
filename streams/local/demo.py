"""Deterministic synthetic data for the local demo (no external data set).

``generate()`` yields JSON lines of canonical :class:`~schemas.interaction.Interaction` events — the
``jsonl`` input format of ``rapport replay`` — for a few brands on x, facebook and instagram over a
couple of weeks. The data is made up but behaves like the real thing, so the demo makes the
product's point: *reach is not engagement*. Every brand posts and gets likes, but the brands differ
in whether (and how fast) they answer the people who write to them:

============== ================= =============================================================
brand          habit             what it does
============== ================= =============================================================
NorthBank      attentive         answers almost everyone, within minutes
GlowUp         influencer_only   answers customers with > 10k followers, ignores the rest
VoltMotors     broadcaster       posts a lot (big reach), almost never replies
TelcoOne       slow              answers most people, but hours (sometimes a day) later
SkyHop         firefighter       answers complaints quickly, ignores questions and praise
FreshCart      average           answers about half, within a couple of hours
============== ================= =============================================================

What is generated, per brand and customer:

- brand **posts** (outbound broadcasts, no customer) with impressions / likes / shares / replies counts;
- customer **reactions**, **shares** (no text) of those posts and **follows** of the brand: reach
  signals, never conversation;
- customer **comments** on posts and **mentions** of the brand (complaints, questions, praise; some with
  emoji), the brand's **replies** to them (``parent_id`` = the customer's message, ``customer_id`` =
  that customer), sometimes a customer **follow-up** reply in the same conversation and the brand's
  answer to it.

A small deterministic fraction of the lines (~0.5%) is deliberately bad — invalid JSON, a missing
``brand``, a ``created_at`` without timezone, an unknown ``kind`` — so the demo also shows the
dead-letter path.

Everything comes from one ``random.Random(seed)``: the same arguments give byte-identical output.
"""

from __future__ import annotations

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
INFLUENCER_FOLLOWERS = 10_000
"""Customers with more followers than this count as influencers."""
BAD_LINE_SHARE = 0.005
BAD_LINE_KINDS = ("invalid_json", "missing_brand", "naive_created_at", "unknown_kind")

PLATFORMS = ("x", "facebook", "instagram")
CUSTOMER_PLATFORM_WEIGHTS = (0.5, 0.25, 0.25)

Tone = Literal["complaint", "question", "praise"]
TONES: tuple[Tone, ...] = ("complaint", "question", "praise")
TONE_WEIGHTS = (0.45, 0.30, 0.25)


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
    answer_rate: float
    """Chance that the brand answers an ordinary customer message at all."""
    median_delay_minutes: float
    """Typical time to answer; actual delays are lognormal around it."""
    delay_spread: float = 0.8
    """Sigma of the log delay: 0.5 = fairly regular, 1.2 = anything from minutes to a day."""
    influencer_answer_rate: float | None = None
    """Answer rate for customers with more than ``INFLUENCER_FOLLOWERS`` (None: ``answer_rate``)."""
    complaint_answer_rate: float | None = None
    """Answer rate for complaints (None: ``answer_rate``)."""
    posts_per_day: float = 1.0
    brand_followers: int = 50_000
    post_reach: int = 20_000
    """Median impressions of a post."""

    def answer_probability(self, followers: int, tone: Tone) -> float:
        if self.influencer_answer_rate is not None and followers > INFLUENCER_FOLLOWERS:
            return self.influencer_answer_rate
        if self.complaint_answer_rate is not None and tone == "complaint":
            return self.complaint_answer_rate
        return self.answer_rate


PERSONAS: tuple[Persona, ...] = (
    Persona(
        brand="NorthBank",
        habit="attentive",
        description="answers almost everyone, within minutes",
        topics=("card", "transfer", "app login", "savings account", "statement"),
        products=("mobile app", "savings account", "travel card"),
        answer_rate=0.95,
        median_delay_minutes=7,
        delay_spread=0.7,
        posts_per_day=1.0,
        brand_followers=120_000,
        post_reach=30_000,
    ),
    Persona(
        brand="GlowUp",
        habit="influencer_only",
        description="answers customers with many followers, ignores the rest",
        topics=("order", "foundation shade", "delivery", "lipstick", "refund"),
        products=("serum", "spring palette", "lip oil"),
        answer_rate=0.04,
        influencer_answer_rate=0.9,
        median_delay_minutes=25,
        posts_per_day=1.5,
        brand_followers=400_000,
        post_reach=90_000,
    ),
    Persona(
        brand="VoltMotors",
        habit="broadcaster",
        description="posts all day to a huge audience, almost never replies",
        topics=("charging", "service booking", "delivery date", "software update", "test drive"),
        products=("Volt S", "home charger", "Volt X crossover"),
        answer_rate=0.03,
        median_delay_minutes=180,
        posts_per_day=6.0,
        brand_followers=2_000_000,
        post_reach=400_000,
    ),
    Persona(
        brand="TelcoOne",
        habit="slow",
        description="answers most people, but hours (sometimes a day) later",
        topics=("bill", "signal", "roaming", "contract", "router"),
        products=("5G plan", "fibre router", "family bundle"),
        answer_rate=0.75,
        median_delay_minutes=8 * 60,
        delay_spread=0.7,
        posts_per_day=1.0,
        brand_followers=80_000,
        post_reach=15_000,
    ),
    Persona(
        brand="SkyHop",
        habit="firefighter",
        description="answers complaints quickly, ignores questions and praise",
        topics=("flight", "luggage", "refund", "booking", "seat"),
        products=("summer fares", "city breaks", "new lounge"),
        answer_rate=0.08,
        complaint_answer_rate=0.85,
        median_delay_minutes=35,
        posts_per_day=1.0,
        brand_followers=250_000,
        post_reach=40_000,
    ),
    Persona(
        brand="FreshCart",
        habit="average",
        description="answers about half, within a couple of hours",
        topics=("delivery", "order", "voucher", "substitution", "app"),
        products=("weekly box", "bakery range", "same-day delivery"),
        answer_rate=0.45,
        median_delay_minutes=120,
        posts_per_day=1.5,
        brand_followers=60_000,
        post_reach=12_000,
    ),
)
PERSONAS_BY_HABIT = {p.habit: p for p in PERSONAS}


# --- the texts ------------------------------------------------------------------------------------

MENTIONS: dict[Tone, tuple[str, ...]] = {
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
    ),
    "praise": (
        "@{brand} love the new {topic}, great job! 😍",
        "Shoutout to @{brand}, the {topic} was super easy. Thank you!",
        "@{brand} best {topic} I've had in years 🙌",
        "@{brand} thanks for sorting my {topic} so quickly, amazing team",
    ),
}
COMMENTS: dict[Tone, tuple[str, ...]] = {
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
    "praise": ("Love this! 😍", "Looks great!", "Can't wait to try it 🙌", "Brilliant, well done"),
}
REPLIES: dict[Tone, tuple[str, ...]] = {
    "complaint": (
        "Hi {name}, we're sorry about the trouble with your {topic}. Could you DM us the details?",
        "So sorry {name}! Our team is looking into your {topic} right now.",
        "Hi {name}, apologies for this. We've escalated your {topic} case and will update you today.",
    ),
    "question": (
        "Hi {name}! You can manage your {topic} in the app under Settings. Happy to help further 🙂",
        "Good question {name}: yes, details are on our help page. Let us know if anything is unclear!",
        "Hi {name}, we've sent you a DM with the steps for your {topic}.",
    ),
    "praise": (
        "Thank you so much, {name}! 💙",
        "That's great to hear {name}, thanks for the kind words!",
        "You made our day, {name} 😊",
    ),
}
FOLLOW_UPS_HAPPY = ("Thanks, that fixed it! 🙏", "Great, thank you for the quick answer", "Perfect, thanks!")
FOLLOW_UPS_UNHAPPY = (
    "Still not working...",
    "I sent the DM two days ago and heard nothing 😤",
    "That doesn't help at all, really annoyed",
)
SECOND_REPLIES = (
    "Thanks for letting us know {name}, glad we could help!",
    "Sorry {name}, we're checking again and will get back to you shortly.",
)
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
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 9, 8, 8, 8, 8, 9, 9, 9, 8, 6, 4, 2)


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
    brands: tuple[int, ...]
    """Indexes of the brands this customer talks to."""
    chattiness: float
    """Messages per brand per week."""


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

    def make_customers(self, count: int) -> None:
        taken: set[str] = set()
        for _ in range(count):
            platform = self.rng.choices(PLATFORMS, weights=CUSTOMER_PLATFORM_WEIGHTS)[0]
            author_id = str(self.rng.randrange(10**8, 10**10))
            while platform + author_id in taken:
                author_id = str(self.rng.randrange(10**8, 10**10))
            taken.add(platform + author_id)
            name = self.rng.choice(FIRST_NAMES)
            # lognormal: median ~400 followers, ~7% above 10k, a few with hundreds of thousands
            followers = int(self.rng.lognormvariate(6.0, 2.2))
            how_many = self.rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
            brands = tuple(sorted(self.rng.sample(range(len(self.brands)), min(how_many, len(self.brands)))))
            self.customers.append(
                Customer(
                    platform=platform,
                    author_id=author_id,
                    handle=f"{name}_{author_id[-3:]}",
                    name=name.capitalize(),
                    followers=followers,
                    brands=brands,
                    chattiness=self.rng.choice((0.5, 1.0, 2.0, 3.0, 5.0)),
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
            "author_followers": customer.followers,
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

    def conversation(self, brand: Brand, customer: Customer, message: Interaction, tone: Tone, topic: str) -> None:
        """The brand may answer ``message``; the customer may answer back; the brand may answer again."""
        persona, platform = brand.persona, customer.platform
        if self.rng.random() >= persona.answer_probability(customer.followers, tone):
            return
        root = message.conversation_id or message.event_id
        at = self.later(message.created_at, persona.median_delay_minutes, persona.delay_spread)
        reply = self.add(
            at,
            event_id=f"{platform}:{self.next_native_id(platform, brand, at)}",
            kind="reply",
            text=self.rng.choice(REPLIES[tone]).format(name=customer.name, topic=topic),
            parent_id=message.event_id,
            conversation_id=root,
            **self.brand_fields(platform, brand, customer),
        )
        if reply is None or self.rng.random() >= 0.35:
            return
        happy = self.rng.random() < (0.75 if tone != "complaint" else 0.45)
        at = self.later(reply.created_at, 20, 1.0)
        follow_up = self.add(
            at,
            event_id=f"{platform}:{self.next_native_id(platform, brand, at)}",
            kind="reply",
            text=self.rng.choice(FOLLOW_UPS_HAPPY if happy else FOLLOW_UPS_UNHAPPY),
            parent_id=reply.event_id,
            conversation_id=root,
            **self.customer_fields(customer, brand),
        )
        answers_again = 0.8 * persona.answer_probability(customer.followers, tone)
        if follow_up is None or self.rng.random() >= answers_again:
            return
        at = self.later(follow_up.created_at, persona.median_delay_minutes, persona.delay_spread)
        self.add(
            at,
            event_id=f"{platform}:{self.next_native_id(platform, brand, at)}",
            kind="reply",
            text=SECOND_REPLIES[0 if happy else 1].format(name=customer.name),
            parent_id=follow_up.event_id,
            conversation_id=root,
            **self.brand_fields(platform, brand, customer),
        )

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
            for kind, chance in (("reaction", 0.45), ("share", 0.04)):
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
            tone = self.rng.choices(TONES, weights=TONE_WEIGHTS)[0]
            topic = self.rng.choice(persona.topics)
            when = self.later(at, 60, 1.0)
            comment = self.add(
                when,
                event_id=f"{platform}:{self.next_native_id(platform, brand, when)}",
                kind="comment",
                text=self.rng.choice(COMMENTS[tone]).format(topic=topic),
                parent_id=post.event_id,
                conversation_id=post.event_id,
                **self.customer_fields(fan, brand),
            )
            if comment is not None:
                self.conversation(brand, fan, comment, tone, topic)

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
                tone = self.rng.choices(TONES, weights=TONE_WEIGHTS)[0]
                topic = self.rng.choice(brand.persona.topics)
                at = self.random_moment()
                mention = self.add(
                    at,
                    event_id=f"{platform}:{self.next_native_id(platform, brand, at)}",
                    kind="mention",
                    text=self.rng.choice(MENTIONS[tone]).format(brand=brand.name, topic=topic),
                    **self.customer_fields(customer, brand),
                )
                if mention is not None:
                    self.conversation(brand, customer, mention, tone, topic)

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
    return iter(gen.lines())


def write_demo_file(path: Path, **kwargs: Any) -> int:
    """Write ``generate(**kwargs)`` to ``path`` as a JSON-lines file; return the number of lines."""
    lines: Sequence[bytes] = list(generate(**kwargs))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return len(lines)
