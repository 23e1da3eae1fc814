"""What a client sent, as a message repeats it: shortened, so a mistake's answer stays the size of a message.

A choice field's refusal quotes the value ("“…” is not a valid choice."): 5,000 characters sent as a placement's
`kind` came back whole in the 400. No application imports: the API's fields, its query filters and the models use it.
"""

from __future__ import annotations

ECHO_CHARS = 60  # enough to recognise a misspelt word or a pasted address by its start


def echo(value: object) -> str:
    """`value` as text, cut to its first `ECHO_CHARS` characters and "…" when longer."""
    text = str(value)
    return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}…"
