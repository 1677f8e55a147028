"""Schemathesis hooks for Logbook's OpenAPI document (loaded by .ci/schemathesis).

`logbook-query` is the format of a string in Logbook's query language (README, "The query
language"). No JSON Schema pattern describes that language, so the format tells schemathesis how
to draw valid queries: one to four terms from every kind the language has, each possibly negated.
"""

import datetime
import os

import schemathesis
from hypothesis import strategies as st

TERMS = [
    "actor:alice@acme.com",
    'actor:"Alice Smith"',
    "actor:alice@acme.com,bob@acme.com",
    "action:server.*",
    "action:server.reboot",
    "target:srv-123",
    "ip:203.0.113.7",
    "ip:203.0.113.0/24",
    "ip:2001:db8::/32",
    "outcome:failure",
    "outcome:success",
    "is:new-ip",
    "is:new-network",
    "created:>=2024-01-01",
    "created:2024-06-01..2024-06-30",
    "reboot",
    '"reboot web-1"',
]

term = st.builds(
    lambda negated, text: ("-" if negated and ":" in text else "") + text,
    st.booleans(),
    st.sampled_from(TERMS),
)

schemathesis.openapi.format(
    "logbook-query",
    st.lists(term, min_size=1, max_size=4).map(" ".join),
)

# `logbook-cursor` is the opaque `next_cursor` of an earlier page of the key's account: no
# pattern can draw one the server made, so .ci/schemathesis reads real ones from the server it
# started and passes them here (comma-separated). Without any, the format draws nothing, and
# schemathesis leaves the optional cursor out.
CURSORS = [cursor for cursor in os.environ.get("LOGBOOK_SCHEMATHESIS_CURSORS", "").split(",") if cursor]

schemathesis.openapi.format(
    "logbook-cursor",
    st.sampled_from(CURSORS) if CURSORS else st.nothing(),
)

# `utf8-at-most-N-bytes`: text the ingest validator bounds in bytes of UTF-8, without U+0000 (JSON
# Schema's maxLength counts characters). Registered for the default limits, which the server in
# .ci/schemathesis runs with (512 for short texts, 4096 for a message).
TEXT_CHARACTERS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
for max_bytes in (512, 4096):
    schemathesis.openapi.format(
        f"utf8-at-most-{max_bytes}-bytes",
        # Cut at the byte limit on a character boundary rather than filtering, so that no draw
        # is thrown away.
        st.text(TEXT_CHARACTERS, max_size=max_bytes).map(
            lambda text, max_bytes=max_bytes: text.encode("utf-8")[:max_bytes].decode(
                "utf-8", "ignore"
            )
        ),
    )

# `logbook-created-at`: an RFC 3339 date-time with an offset, from the Unix epoch to now (the
# server takes up to 24 hours ahead of its clock; drawing up to now keeps the draw valid).
schemathesis.openapi.format(
    "logbook-created-at",
    st.builds(
        lambda moment, offset_minutes: moment.astimezone(
            datetime.timezone(datetime.timedelta(minutes=offset_minutes))
        ).isoformat(),
        st.datetimes(
            min_value=datetime.datetime(1970, 1, 2),
            max_value=datetime.datetime.now() - datetime.timedelta(days=1),
            timezones=st.just(datetime.timezone.utc),
        ),
        st.integers(min_value=-14 * 60, max_value=14 * 60),
    ),
)

# A number in free JSON (metadata, change values) is judged by how it is written: an integer
# literal must lie within ±(2^53 - 1), while a number written with a fraction or an exponent
# (`1e21`) is kept as the double it is (README, "Sending events"). JSON Schema sees only values,
# so the OpenAPI document states the stricter rule, and a double with an integral value beyond
# that range, which Python writes with an exponent and the server rightly keeps, would count as a
# "schema-violating request accepted". Such numbers are left out of the bodies drawn: whether they
# are valid depends on their notation, which the schema cannot state.
EXACT_INTEGER = 2**53 - 1


def _holds_notation_dependent_number(value):
    if isinstance(value, float):
        return value.is_integer() and abs(value) > EXACT_INTEGER
    if isinstance(value, dict):
        return any(_holds_notation_dependent_number(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_notation_dependent_number(item) for item in value)
    return False


@schemathesis.hook
def filter_body(context, body):
    return not _holds_notation_dependent_number(body)
