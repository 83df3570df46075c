"""Properties of the redirect's query handling (views.query_split, landing_url_with_click)
and of the bot test on the user agent (services.user_agent_is_bot)."""

import re
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from attribution.services import BOT_PATTERNS, SUB_MAX_LENGTH, user_agent_is_bot
from attribution.views import RESERVED, SUB_NAMES, landing_url_with_click, query_split

PROPERTIES = settings(max_examples=200, deadline=None)

printable = st.characters(blacklist_categories=("Cs", "Cc"))
other_names = st.text(printable, max_size=12).filter(lambda name: name not in RESERVED)
names = st.one_of(st.sampled_from((*SUB_NAMES, "click_id")), other_names)
values = st.one_of(st.text(max_size=20), st.text(max_size=300, alphabet="ab€é +&=%"))
visitor_params = st.lists(st.tuples(names, values), max_size=12)
own_params = st.lists(st.tuples(st.text(printable, max_size=8), st.text(max_size=8)), max_size=4)
fragments = st.one_of(st.none(), st.text(alphabet="abc-_/?=&.#%!", max_size=12))


@st.composite
def landing_urls(draw):
    """(landing URL, its own query's pairs, its fragment or None)."""
    base = draw(
        st.sampled_from(
            [
                "https://brand.example.com",
                "https://brand.example.com/",
                "https://promo.example.org/offer",
                "http://promo.example.org:8080/a/b.html",
            ]
        )
    )
    own = draw(own_params)
    with_question_mark = bool(own) or draw(st.booleans())
    fragment = draw(fragments)
    url = base + (f"?{urlencode(own)}" if with_question_mark else "")
    if fragment is not None:
        url += f"#{fragment}"
    return url, own, fragment


def redirect_url(landing_url: str, query: str, click_id) -> str:
    subs, others = query_split(query)
    return landing_url_with_click(landing_url, click_id=click_id, subs=subs, others=others)


def expected_pairs(own, params, click_id):
    """What the landing page reads: its own query, our click_id, the sub ids in order (the
    last value of each, cut to 255, left out when empty), the visitor's other parameters in
    the order sent. The visitor's click_id is dropped."""
    subs = {}
    for name, value in params:
        if name in SUB_NAMES:
            subs[name] = value[:SUB_MAX_LENGTH]
    return [
        *own,
        ("click_id", str(click_id)),
        *((name, subs[name]) for name in SUB_NAMES if subs.get(name)),
        *((name, value) for name, value in params if name not in RESERVED),
    ]


@PROPERTIES
@given(landing=landing_urls(), params=visitor_params, click_id=st.uuids())
@example(
    landing=("https://promo.example.org/offer?lang=en#signup", [("lang", "en")], "signup"),
    params=[("sub1", "a"), ("click_id", "forged"), ("sub1", ""), ("utm", "x"), ("sub2", "é")],
    click_id=uuid.UUID(int=1),
)
def test_the_landing_page_gets_its_query_the_click_id_the_subs_and_the_rest(
    landing, params, click_id
):
    landing_url, own, fragment = landing
    result = redirect_url(landing_url, urlencode(params), click_id)

    parts = urlsplit(result)
    assert parse_qsl(parts.query, keep_blank_values=True) == expected_pairs(own, params, click_id)
    # The landing URL itself is unchanged around the query.
    assert result.startswith(landing_url.partition("#")[0].partition("?")[0] + "?")
    if fragment is None:
        assert "#" not in result
    else:
        assert result.partition("#")[2] == fragment
    # Exactly one click_id after the landing's own query: ours.
    added = parse_qsl(parts.query, keep_blank_values=True)[len(own) :]
    assert [value for name, value in added if name == "click_id"] == [str(click_id)]


# Raw query strings as clients send them, encoded or not (a fragment never reaches a server).
raw_tokens = st.sampled_from(
    [
        "sub1",
        "sub3",
        "click_id",
        "utm",
        "%73ub2",  # sub2, encoded
        "click%5Fid",  # click_id, encoded
        "sub1+",
        "=",
        "&",
        "&&",
        "+",
        "%20",
        "%",
        "%2",
        "%ZZ",
        "%C3%A9",
        "%C3",
        "%26",
        "%3D",
        "a",
        "é",
        "€",
    ]
)
raw_queries = st.lists(raw_tokens, max_size=16).map("".join)


@PROPERTIES
@given(query=raw_queries, click_id=st.uuids())
@example(query="%73ub2=x&click%5Fid=forged&sub1=a&sub1=&sub3=%C3%A9&a=%ZZ", click_id=uuid.uuid4())
def test_any_raw_query_reads_as_django_would_read_it(query, click_id):
    """The visitor's parameters as urllib/Django decode them (parse_qsl, the parser of
    QueryDict): what the landing page reads is what the visitor sent."""
    params = parse_qsl(query, keep_blank_values=True)

    result = redirect_url("https://brand.example.com/welcome", query, click_id)

    assert parse_qsl(urlsplit(result).query, keep_blank_values=True) == expected_pairs(
        [], params, click_id
    )


@PROPERTIES
@given(params=visitor_params)
def test_query_split_decodes_the_subs_and_keeps_the_others_as_sent(params):
    query = urlencode(params)
    subs, others = query_split(query)

    expected_subs = {}
    for name, value in params:
        if name in SUB_NAMES:
            expected_subs[name] = value[:SUB_MAX_LENGTH]
    assert subs == expected_subs
    sent = [piece for piece in query.split("&") if piece]
    assert others == [
        piece for piece, (name, _) in zip(sent, params, strict=True) if name not in RESERVED
    ]


# --- user_agent_is_bot -------------------------------------------------------------------

# The definition before the redirect's speed-up: one case-insensitive regex.
OLD_BOT_RE = re.compile("|".join(re.escape(p) for p in BOT_PATTERNS), re.IGNORECASE)


def old_user_agent_is_bot(user_agent: str) -> bool:
    return not user_agent.strip() or OLD_BOT_RE.search(user_agent) is not None


@st.composite
def user_agents(draw, alphabet):
    """Text, often with a bot pattern inside in random letter case."""
    text = st.text(alphabet=alphabet, max_size=40)
    if not draw(st.booleans()):
        return draw(text)
    pattern = draw(st.sampled_from(BOT_PATTERNS))
    cased = "".join(c.upper() if draw(st.booleans()) else c for c in pattern)
    return draw(text) + cased + draw(text)


@PROPERTIES
@given(user_agent=user_agents(st.characters(blacklist_categories=("Cs",))))
def test_bot_is_an_empty_user_agent_or_one_with_a_pattern_in_any_case(user_agent):
    assert user_agent_is_bot(user_agent) == (
        not user_agent.strip() or any(p in user_agent.lower() for p in BOT_PATTERNS)
    )


@PROPERTIES
@given(user_agent=user_agents(st.characters(max_codepoint=0xFF, blacklist_categories=("Cs",))))
def test_bot_flag_is_unchanged_for_any_user_agent_a_request_can_carry(user_agent):
    """A WSGI header is Latin-1 text: over that alphabet the faster test answers exactly as
    the regex it replaced."""
    assert user_agent_is_bot(user_agent) == old_user_agent_is_bot(user_agent)


@pytest.mark.parametrize(
    ("user_agent", "is_bot"),
    [
        ("GoogleBOT/2.1", True),
        ("CURL/8.5.0", True),
        ("Mozilla/5.0 (compatible; BingBot/2.0)", True),
        ("Mozilla/5.0 (X11; Linux x86_64) HEADLESSCHROME/124.0", True),
        ("Python-Requests/2.32", True),
        ("FacebookExternalHit/1.1", True),
        ("   ", True),
        ("\t\n", True),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36", False),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", False),
    ],
)
def test_bot_examples_in_any_letter_case(user_agent, is_bot):
    assert user_agent_is_bot(user_agent) is is_bot
    assert user_agent_is_bot(user_agent) is is_bot  # the cached answer too
