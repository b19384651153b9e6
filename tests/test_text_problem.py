"""``text_problem`` (every text field's check, SPEC §8) searches with a regex; it must refuse
exactly what the per-character definition refuses, and name the first problem the same way."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapportnotes.schemas.fields import text_problem

SURROGATE = "Contains an invalid (surrogate) character."
CONTROL = "Contains a control character."


def reference(value: str, *, allow_newlines: bool = False) -> str | None:
    """The definition, one character at a time (as it was written before the regex)."""
    for i, ch in enumerate(value):
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return SURROGATE
        if allow_newlines and (ch in "\t\n" or (ch == "\r" and value[i + 1:i + 2] == "\n")):
            continue
        if unicodedata.category(ch) == "Cc":
            return CONTROL
    return None


@pytest.mark.parametrize("allow_newlines", [False, True])
def test_every_code_point_alone_and_before_a_newline_is_judged_as_the_definition_does(allow_newlines):
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        for value in (ch, f"a{ch}\n"):
            assert text_problem(value, allow_newlines=allow_newlines) == reference(
                value, allow_newlines=allow_newlines), (hex(code), value)


@pytest.mark.parametrize(("value", "multiline", "expected"), [
    ("line one\r\nline two\n\tindented", True, None),
    ("line one\r\nline two", False, CONTROL),
    ("ends with a lone CR\r", True, CONTROL),
    ("CR CR LF\r\r\n", True, CONTROL),
    ("a\rb", True, CONTROL),
    ("tab\there", False, CONTROL),
    ("\ud800 then NUL \x00", True, SURROGATE),
    ("NUL \x00 then \udfff", True, CONTROL),
    ("C1 control \x85 (NEL)", True, CONTROL),
    ("DEL \x7f", False, CONTROL),
    ("non-ASCII is text: café, 東京, 🙂, \u2028, \u200b", False, None),
    ("", False, None),
])
def test_examples(value, multiline, expected):
    assert text_problem(value, allow_newlines=multiline) == expected
    assert reference(value, allow_newlines=multiline) == expected


_awkward = st.sampled_from(["\r", "\n", "\t", "\x00", "\x1f", "\x7f", "\x9f", "\xa0", "\ud800", "\udfff",
                            "a", "é"])


@given(st.lists(st.one_of(_awkward, st.characters()), max_size=40).map("".join), st.booleans())
def test_any_text_is_judged_as_the_definition_does(value, multiline):
    assert text_problem(value, allow_newlines=multiline) == reference(value, allow_newlines=multiline)
