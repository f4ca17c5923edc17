"""Does an inbound customer message need a reply from the brand? A deterministic, rule-based answer.

Pure: standard library only, no model, no I/O. It runs on every inbound event, so all the word lists
below are compiled once, at import, into one regex (a trie of the phrases: one left-to-right pass over
the text finds every cue), and a call does that pass plus a few small searches on one lower-cased copy
of the text: 10–15 µs for a tweet (the 5,000 TWCS sample tweets, CPython 3.11).

What "needs a reply" means (the rubric of the hand labels in ``shared/data/needs_reply``):

- **yes**: the message asks a question; reports a problem, failure, delay or complaint; asks for
  help, action, a refund, information or a follow-up; or answers a question the brand asked and so
  keeps an open case going (an order number, "DM sent", "done", "the fix did not work"). A joke that
  still reports a real failure or a wrong charge is a yes.
- **no**: pure thanks, praise or acknowledgement ("thanks!", "got it, cheers", "will do"); the
  closing of a resolved case; emoji- or reaction-only messages; jokes, banter or commentary with no
  ask; promos, spam, brand agents' own replies.

Missing a real question costs more than queueing a thank-you, so a message addressed to a brand that
no rule decides counts as needing a reply.

The rules, in order; the first that decides wins:

1. EMPTY: None, blank or deleted text: no.
2. CONTENT_FREE: nothing but @handles, links, emoji and punctuation: yes only for a bare "?" chaser
   or for a link (a screenshot) sent in answer to a brand's question; else no.
3. NOT_A_CUSTOMER: a brand agent's signed reply ("... ^JA", "... *ErikS", "... -Becky") or brand voice
   ("send us a DM", "how can we help"): no. A promo or contest ("RT to win", "giveaway") or a
   broadcast to ``MASS_MENTIONS`` or more handles: no, unless it reports a PROBLEM.
4. RESOLVED: the customer says the case is closed ("it's working now", "all sorted", "figured it
   out") and makes no REQUEST and asks no real question: no.
5. NEEDS: a PROBLEM (failure, delay, money, complaint, distress, angry emoji), a REQUEST ("can you",
   "please", "I need", "how do I", "any update"), a sent DM ("DM sent", "I've messaged you") or a
   question: yes. A "?" counts in a message addressed to a handle; in a message only *about* a brand
   ("best part of my day? free drinks on @Brand") it counts only when its sentence opens like a
   question ("why does...?"). A soft request word ("help", "reply") inside thanks for it ("thanks
   for your help") is gratitude, not a request.
6. CONTINUES_CASE, only with ``answers_brand_question``: "done", "just did", "submitted", an order or
   booking reference, a long number, an e-mail address: yes.
7. CLOSING: thanks, praise or acknowledgement ("thanks!", "great service", "will do", "sure"), in a
   few languages, or happy emoji: no.
8. COMMENTARY: a handle is only mentioned inside a sentence, or none is ("just got my $3 bowl at
   @Brand"): no.
9. Otherwise, a message addressed to a handle with no other signal ("@Brand The first two weeks of
   June", "@Brand iPhone 7+, iOS 11.1"): yes.

A message is *addressed* when a handle opens it (after a greeting such as "hey"), opens or ends a
sentence ("... fine. @Brand how do I", "... so bad @Brand. I am"), or closes it ("... fix it @Brand").

Edge cases. Matching ignores case, apostrophes ("don't" = "dont"), "#" (hashtags count as words:
"#disappointed") and links; "&amp;" is decoded. "Thanks, but it still doesn't work" is a yes (rule 5
comes before rule 7). "will do" or "sure" alone is a no even in answer to a brand's question, but
"done" or "DM sent" is a yes. ``answers_brand_question`` is the caller's to compute: the message
replies to a brand message for which :func:`brand_asks` is true.

Examples::

    >>> needs_reply("@AmazonHelp my order never arrived, can you help?")
    True
    >>> needs_reply("@AmazonHelp Okay, thanks so much!")
    False
    >>> needs_reply("@Delta Yes, GEX8LD", answers_brand_question=True)
    True
    >>> needs_reply("@AdobeCare sure thing", answers_brand_question=True)
    False
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["MASS_MENTIONS", "brand_asks", "needs_reply"]

MASS_MENTIONS = 5  # a message tagging this many handles is a broadcast or a banter thread, not a care case

# Cue classes (bit flags): every phrase in the lists below belongs to one.
PROBLEM, REQUEST, SOFT_REQUEST, DM_SENT, RESOLVED, CLOSING, CONTINUES_CASE, BRAND_VOICE, PROMO = (
    1 << i for i in range(9)
)

# ---------------------------------------------------------------------------------------------------
# Rule 3, NOT_A_CUSTOMER. Brand voice (an agent replying under an anonymised id) and promos.
# ---------------------------------------------------------------------------------------------------

_BRAND_VOICE = """
send us a dm | send me a dm | shoot us a dm | shoot me a dm | drop us a dm | dm us | send us a message
how can we help | how may we help | how can i help you | what can we do for you
we're here to help | we're happy to help | we're glad to help | we'd be happy to help
"""
_PROMO = """
rt to win | retweet to win | rt to enter | follow and rt | rt and follow | enter to win | chance to win
giveaway | sweepstakes | concurso | sorteo | excited to announce | thrilled to announce | proud to announce
"""
# TWCS agents sign their tweets: "^AB", "*ErikS", "-Becky", "~ Ellen".
_AGENT_SIGNATURE = re.compile(r"(?:^|\s)(?:[\^*~]\s?[A-Z][A-Za-z]{1,15}|[-–]\s?[A-Z][a-z]{2,15})[\s.!]*$")

# ---------------------------------------------------------------------------------------------------
# Rule 4, RESOLVED. The customer closes the case.
# ---------------------------------------------------------------------------------------------------

_RESOLVED = """
it's working | it is working | working now | works now | working again | works again | working fine now
all sorted | it's sorted | sorted now | sorted it | got it sorted | got it working | got it to work
got it fixed | it's fixed | fixed it | fixed now | all fixed | all good now | all set now
solved | resolved | figured it out | figured out | worked it out | found it | no longer need
no longer an issue | no longer a problem | back up and running | back online | it arrived | has arrived
finally arrived | finally got it | received it
"""

# ---------------------------------------------------------------------------------------------------
# Rule 5, NEEDS. Problems (any industry: airlines, telcos, retail, delivery, apps, banks), requests,
# sent DMs. A negated verb ("doesn't work", "can't log in", "never arrived") is a problem: one of
# _NEGATIONS, an optional filler word ("doesn't even load", "won't ever arrive"), one of _FAILING_VERBS.
# ---------------------------------------------------------------------------------------------------

_NEGATIONS = """
not | never | can't | cannot | couldn't | won't | wouldn't | doesn't | don't | didn't | isn't | aren't
wasn't | weren't | haven't | hasn't | hadn't | unable to | failed to | fails to | refuses to | refused to
"""
_NEGATION_FILLERS = ("even", "seem to", "ever", "always", "really", "actually", "yet", "been", "be", "just", "get")
_FAILING_VERBS = """
work | working | worked | load | loading | loaded | open | opening | connect | connecting | respond
responding | answer | answered | arrive | arrived | deliver | delivered | receive | received | show up
showed up | shown up | come | came | turn on | boot | charge | charging | sync | syncing | install
installing | download | downloading | update | updating | let me | log in | login | sign in | play
playing | stream | streaming | send | sending | go through | gone through | accept | accepted | apply
applied | recognize | recognise | recognized | pay | paid | refund | refunded | help | helped | fix
fixed | call back | called back | get back | got back | get through | get into | get in | get my
get a | get any | got my | get the | access | find | see | hear back | heard back | reply
replied | return | returned | register | activate | activated | verify | verified | redeem | redeemed
happy | impressed | pleased | satisfied | satisfactory | satisfactorily | good enough | acceptable
fair | okay | ok | right | resolved | available | helpful | a fan | amused
"""
_PROBLEM = """
broken | broke | busted | crash | crashed | crashes | crashing | error | errors | glitch | glitches
glitching | glitchy | bug | bugs | buggy | bugged | freeze | freezes | freezing | froze | frozen | stuck
lag | lagging | laggy | outage | outages | offline | fail | fails | failed | failing | failure | fault
faulty | defect | defective | damage | damaged | leak | leaking | leaked | leaky | malfunction
malfunctioning | hacked | compromised | problem | problems | issue | issues | trouble | troubles
wrong | incorrect | missing | lost | stolen | unable | unusable | unresponsive | disconnected
disconnecting | dropped | dropping | slow | unreliable | spotty | intermittent | dead | dying | died
drains | draining | overheating | blurry | corrupted | suspended | banned | deactivated | locked
declined | rejected | denied | invalid | unavailable | locked out | messed up | screwed up | went wrong
gone wrong | messes up | messing up | keeps crashing | keeps freezing | keeps dropping | keeps restarting
keeps saying
keeps telling | keeps asking | keeps happening | keeps charging | keeps logging | keeps kicking
keep getting | keeps giving | same problem | same issue | same error | same message | no dice | no luck
no signal | no service | no internet | no wifi | no wi-fi | no power | no connection | no response
no reply | no answer | no resolution | no one | nobody | nothing works | nothing worked
still no | still not | still nothing | still waiting | still haven't | still hasn't | still can't
still doesn't | still isn't | still having | still getting | still happening | still broken
still down | is down | are down | was down | been down | went down | is out in | are out | power out
delay | delays | delayed | delaying | waiting | waited | overdue | running late | arrived late
hours late | days late | so late | on hold | cancel | cancelled | canceled | cancellation | rescheduled
diverted | stranded | missed my | where is my | where's my | wrong order
refund | refunds | refunded | reimburse | reimbursed | reimbursement | compensation | compensate
overcharged | overcharging | charged | charge me | charging me | charges | billed | bill | fee | fees
money back | double charged | charged twice | scam | scammed | scammers | fraud | fraudulent | stole
theft | dispute | chargeback | rip off | ripoff | robbed | false advertising | misleading
worst | terrible | horrible | horrendous | awful | appalling | atrocious | abysmal | dreadful
disgusting | disgusted | disgraceful | disgrace | shocking | shameful | disappointed | disappointing
disappointment | unacceptable | ridiculous | absurd | useless | pathetic | poor | poorly | bad | rude
unprofessional | unhelpful | incompetent | incompetence | lie | lies | lied | lying | liar | liars
suck | sucks | sucked | crap | crappy | shit | shitty | bullshit | wtf | smh | ffs | fml | tf | annoyed
annoying | frustrated | frustrating | frustration | furious | angry | mad | upset | pissed | livid
fed up | sick of | tired of | complain | complaint | complaints | complaining | ignored | ignoring
unfortunately | unfortunate | heartbroken | cry | cried | crying | tears | poisoning | made me sick
got sick | refuse | refused | refuses | refusing | nightmare | what a joke | never again | no excuse
hair in | glass in | plastic in | bug in | mould | mouldy | mold | moldy | stale | rotten | undercooked
no funciona | problema | reembolso | ne fonctionne pas | problème | funktioniert nicht | não funciona
"""
_REQUEST = """
can you | could you | would you | will you | can u | could u | would u | can ya | can someone
can somebody | can anyone | could someone | could anyone | does anyone | anyone know | can i | could i
may i | can we | if you could | if u could | i need | i needed | i want | i wanna | i would like
i'd like | i require | i expect | i demand | need help | need to know | needs to | how do | how can
how would | how should | how to | how come | how long | how much | what do | what can | what should
what is | what's | what are | what will | what happened | where do | where can | where is | where's
where are | who do | who can | who should | when will | when is | when do | when can | is there
is it possible | are there | any update | any updates | any news | any idea | any ideas | any word
any way | any chance | any reason | any info | any information | call me | contact me | email me
dm me | message me | text me | get back to me | let me know | lmk | fix it | fix this | fix that
fix my | fix the | fix your | sort it | sort this | sort out | look into | escalate | replace
reset my | unlock my | reactivate | update my | change my | cancel my | why is | why are | why does
why do | why did | why was | why were | why not | why can't | why won't | why don't | why doesn't
why didn't | why isn't | why aren't | why haven't | why hasn't | why's | please | pls | plz | kindly
asap | urgent | urgently | wondering | wonder if | i have a question | question for you | inquiry
enquiry | query | ayuda | por favor | aidez | s'il vous plaît | svp | hilfe | bitte | ajuda
"""
# Asking words that also turn up in thanks for them ("thanks for your help / the quick reply").
_SOFT_REQUEST = """
help | helpp | assist | assistance | advise | advice | suggestion | suggestions | reply | respond
explain | info | information | answer | response | update
"""
_DM_SENT = """
sent a dm | sent you a dm | sent you a message | sent a message | sent an email | sent you an email
sent the details | sent my details | sent the info | sent you the | sent it | sent over | dm sent
message sent | email sent | just sent | i've sent | i sent | i have sent | i messaged | i emailed
i dm'd | i dmed | dm'd you | dmed you | messaged you | emailed you | check your dm | check your dms
check your inbox | check dm | check dms | reply to my dm | respond to my dm | answer my dm | in your dms
send dm | send you a dm | sending you a dm | dropped you a dm | followed up | i've messaged
"""
_THANKS_FOR_HELP = re.compile(
    r"\b(?:thanks?|thank (?:you|u)|ty|appreciate\w*)\b[^.!?]{0,30}?\b(?:help\w*|support|assist\w*|repl\w*"
    r"|respon\w*|answer\w*|info\w*|advice|update\w*|explain\w*)\b"
)
_NEGATIVE_EMOJI = frozenset("😡😠🤬😤😞😢😭😩😫👎🙄😒👺💩😣😖😟☹🙁😕😔")

# A "?" in a message only *about* a brand counts when its sentence opens like a question.
_REAL_QUESTION = re.compile(
    r"(?:^|[.!?:;]\s*|\b(?:and|but|so|or)\s+)"
    r"(?:why|how|what|whats|when|where|who|which|can|could|would|will|is|are|am|do|does|did|has|have"
    r"|should|anyone|any)\b[^.!?]*\?"
)

# ---------------------------------------------------------------------------------------------------
# Rule 6, CONTINUES_CASE (with answers_brand_question): the customer did what the brand asked.
# ---------------------------------------------------------------------------------------------------

_CONTINUES_CASE = """
done | did it | did that | did so | just did | i did | i have | i've done | submitted | completed
filled it in | filled in | filled out | here it is | here you go | there you go | attached | see attached
see screenshot | see pic | sent | followed | tried that | tried it | tried everything
"""
_REFERENCE = re.compile(
    r"\b(?=[a-z]*\d)(?=\d*[a-z])[a-z\d]{5,12}\b"  # a booking / order reference: letters and digits
    r"|\d[\d\- ]{4,}\d|\S+@\S+\.\w|__email__"  # an order or phone number of 6+ digits, an e-mail address
)

# ---------------------------------------------------------------------------------------------------
# Rule 7, CLOSING. Thanks, praise, acknowledgement. (The longest phrase wins where phrases overlap, so
# "can i just say" is a praise lead-in here, not the request "can i".)
# ---------------------------------------------------------------------------------------------------

_CLOSING = """
thanks | thank you | thank u | thankyou | thx | thnx | thanx | ty | tysm | cheers | appreciate
appreciated | grateful | kudos | shout out | shoutout | great | awesome | amazing | fantastic
brilliant | excellent | perfect | wonderful | lovely | nice | love | loving | loved | loves | best
delighted | happy | glad | friendly | helpful | fab | fabulous | superb | legend | legends | well done
good job | great job | props | outstanding | impressive | impressed | pleased | yum | yummy | delicious
tasty | you rock | looks good | sounds good | so good | really good | very good | all good | good stuff
good service | gracias | merci | danke | obrigado | obrigada | grazie
can i just say | i have to say | i must say | gotta say
"""
_HAPPY_EMOJI = frozenset("❤♥💖💕💗💓💞😍🥰😘😊☺🙂😀😁😃😄😆🤗🙌👏👍🎉💯🤤😋😛😜🔥🙏")
_THANKS_OTHER_SCRIPTS = re.compile(r"ありがとう|谢谢|感谢|धन्यवाद|शुक्रिया")
# An acknowledgement and nothing else ("will do", "sure", "ok"): a no even in answer to the brand.
_ACK_ONLY = re.compile(
    r"(?:\W|\b(?:ok|okay|k|kk|sure|sure thing|will do|alright|all right|noted|understood|got it|gotcha|roger"
    r"|cool|np|no problem|no worries|fine|great|perfect|thanks?|thank you|ty|cheers|lol|haha\w*|you too"
    r"|same to you)\b)*"
)

# ---------------------------------------------------------------------------------------------------
# Text shape: links, handles, whether a handle is addressed.
# ---------------------------------------------------------------------------------------------------

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_ALNUM = re.compile(r"[^\W_]")
_ADDRESSED = re.compile(
    r"^[^\w@]*(?:(?:hey+|hi+|hello|dear|yo|attn|ok(?:ay)?)\b[^\w@]*)?@\w"  # opens the message
    r"|@\w+[ \t]*[.!?]"  # ends a sentence: "... yaar @Brand. i am a rider"
    r"|[.!?:;][ \t]*@\w"  # "... . @Brand how do I"
    r"|@\w+[^\w@]*$",  # closes the message
    re.IGNORECASE,
)


def _phrases(block: str) -> list[str]:
    return [p.strip().replace("'", "") for line in block.strip().splitlines() for p in line.split("|") if p.strip()]


def _trie_regex(phrases: Iterable[str]) -> str:
    """One alternation for many literal phrases, factored by shared prefixes; longer phrases win."""
    root: dict[str, Any] = {}
    for phrase in phrases:
        node = root
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [(r"\s+" if ch == " " else re.escape(ch)) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        alternation = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{alternation})?" if "" in node else alternation

    return emit(root)


def _build_cues() -> tuple[re.Pattern[str], dict[str, int]]:
    flags: dict[str, int] = {}

    def add(block: str | list[str], flag: int) -> None:
        for phrase in _phrases(block) if isinstance(block, str) else block:
            flags[phrase] = flags.get(phrase, 0) | flag

    add(_BRAND_VOICE, BRAND_VOICE)
    add(_PROMO, PROMO)
    add(_RESOLVED, RESOLVED)
    add(_PROBLEM, PROBLEM)
    add(_REQUEST, REQUEST)
    add(_SOFT_REQUEST, SOFT_REQUEST)
    add(_DM_SENT, DM_SENT)
    add(_CONTINUES_CASE, CONTINUES_CASE)
    add(_CLOSING, CLOSING)
    negated = (
        "(?P<negated>"
        + _trie_regex(_phrases(_NEGATIONS))
        + r"\s+(?:"
        + _trie_regex(_NEGATION_FILLERS)
        + r"\s+)?"
        + _trie_regex(_phrases(_FAILING_VERBS))
        + ")"
    )
    return re.compile(r"\b(?:" + negated + "|" + _trie_regex(flags) + r")(?!\w)"), flags


_CUES, _CUE_FLAGS = _build_cues()


def _cue_flags(words: str) -> int:
    found = 0
    for match in _CUES.finditer(words):
        if match.lastgroup:  # a negated verb: "doesn't work", "can't even log in"
            found |= PROBLEM
            continue
        phrase = match.group()
        flag = _CUE_FLAGS.get(phrase)
        found |= flag if flag is not None else _CUE_FLAGS.get(" ".join(phrase.split()), 0)
    return found


def needs_reply(text: str | None, *, answers_brand_question: bool = False) -> bool:
    """True when ``text`` (an inbound customer message) needs a reply from the brand; see the module
    docstring for the rules. ``answers_brand_question``: the message replies to a brand message that
    asked the customer something (see :func:`brand_asks`)."""
    # 1. EMPTY
    if not text or text.isspace():
        return False
    if "&" in text:
        text = text.replace("&amp;", "&").replace("&gt;", ">").replace("&lt;", "<")
    core = _URL.sub(" ", text)
    # Lower-cased, without handles and links; apostrophes dropped ("don't" = "dont"), "#" read as a space.
    words = _MENTION.sub(" ", core).lower().replace("'", "").replace("#", " ")
    emoji = not text.isascii()
    if emoji:
        words = words.replace("’", "").replace("‘", "").replace("？", "?").replace("¿", "?")

    # 2. CONTENT_FREE
    if _ALNUM.search(words) is None:
        return "?" in words or (answers_brand_question and len(core) != len(text))

    cues = _cue_flags(words)
    problem = bool(cues & PROBLEM) or (emoji and not _NEGATIVE_EMOJI.isdisjoint(text))

    # 3. NOT_A_CUSTOMER
    tail = core.rstrip()[-20:]
    if cues & BRAND_VOICE or _AGENT_SIGNATURE.search(tail) is not None:
        return False
    if not problem and (cues & PROMO or core.count("@") >= MASS_MENTIONS):
        return False

    addressed = _ADDRESSED.search(core) is not None
    has_mark = "?" in words
    real_question = has_mark and _REAL_QUESTION.search(words) is not None
    question = real_question or (addressed and has_mark)
    request = bool(cues & REQUEST) or (
        bool(cues & SOFT_REQUEST) and not (cues & CLOSING and _THANKS_FOR_HELP.search(words))
    )

    # 4. RESOLVED
    if cues & RESOLVED and not request and not real_question:
        return False

    # 5. NEEDS
    if problem or request or question or cues & DM_SENT:
        return True

    # 6. CONTINUES_CASE
    if answers_brand_question and (cues & CONTINUES_CASE or _REFERENCE.search(words) is not None):
        return True

    # 7. CLOSING
    if cues & CLOSING or _ACK_ONLY.fullmatch(words):
        return False
    if emoji and (not _HAPPY_EMOJI.isdisjoint(text) or _THANKS_OTHER_SCRIPTS.search(text) is not None):
        return False

    # 8. COMMENTARY, 9. addressed to a handle with no other signal
    return addressed


# A brand message asks the customer something: a question, or a request to DM / send / confirm details.
_BRAND_ASKS = re.compile(
    r"[?？¿]"
    r"|\b(?:dm|pm|direct message|private message|message|email|e-mail|inbox)\b[^.!]{0,12}\b(?:us|me)\b"
    r"|\b(?:send|shoot|drop|follow|reach|get in touch|contact)\b[^.!]{0,20}\b(?:us|me)\b"
    r"|\b(?:please|pls|kindly|could you|can you) (?:\w+ )?(?:send|share|provide|confirm|tell|let|give|post|check"
    r"|try|fill|include|dm|reply|follow|update|restart|reset|clear)\b"
    r"|\blet (?:us|me) know\b",
    re.IGNORECASE,
)


def brand_asks(text: str | None) -> bool:
    """True when a brand's message asks the customer something (a question mark, or a request to DM,
    send, share or confirm details), so a customer's reply to it may keep the case open."""
    return text is not None and _BRAND_ASKS.search(text) is not None
