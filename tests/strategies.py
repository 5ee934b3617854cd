"""Hypothesis strategies for hostile input: text with control characters, lone
surrogates, emoji and long runs; number strings and numbers of every shape."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Characters that matter, mixed into arbitrary Unicode (surrogates included).
NASTY = [
    "\x00", "\x01", "\t", "\n", "\x0b", "\r", "\x1f", " ", "\x7f", "\x85", "\x9f", "\xa0",
    "\u2028", "\u3000", "\ufeff", "\ud800", "\udfff", "\U0001f600", "中", "é", "a", "-",
]  # fmt: skip
chars = st.one_of(st.characters(exclude_categories=()), st.sampled_from(NASTY))
texts = st.one_of(
    st.text(chars, max_size=40),
    st.text(chars, min_size=195, max_size=205),
    st.builds(lambda s, n: s * n, st.text(chars, min_size=1, max_size=3), st.integers(0, 1500)),
)


number_text = st.one_of(
    st.text(st.sampled_from("0123456789.-_ +eE\u0661\u0662\uff11x"), max_size=30),
    st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,5})?", fullmatch=True),
    st.builds(lambda n: f"1e-{n}", st.integers(0, 10**8)),
)
numbers: st.SearchStrategy[Any] = st.one_of(
    number_text,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)

# Mostly valid values with one hostile character, so that whole bodies often pass
# the other checks and the hostile part is what decides.
clean_texts = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=60)
worst = st.one_of(st.sampled_from(["\x00", "\ud800", "\x85", "\r"]), st.sampled_from(NASTY))
one_nasty = st.builds(lambda a, c, b: a + c + b, clean_texts, worst, clean_texts)
hostile_texts = st.one_of(clean_texts, one_nasty, one_nasty, texts)
plain_numbers = st.from_regex(r"[1-9][0-9]{0,6}(\.[0-9]{1,2})?", fullmatch=True)
hostile_numbers: st.SearchStrategy[Any] = st.one_of(plain_numbers, plain_numbers, numbers)
hostile_ids = st.one_of(
    st.sampled_from(["am_li", "bcd_zheng", "a.b@c-d", "x" * 64]),
    st.builds(lambda c: "am_li" + c, st.sampled_from(NASTY)),
    texts,
)
