"""Schemathesis hooks for Logbook's OpenAPI document (loaded by .ci/schemathesis).

`logbook-query` is the format of a string in Logbook's query language (README, "The query
language"). No JSON Schema pattern describes that language, so the format tells schemathesis how
to draw valid queries: one to four terms from every kind the language has, each possibly negated.
"""

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
