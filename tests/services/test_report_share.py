"""A behaviour's ``share`` in the coach report (``reports._share``, integer arithmetic) is
exactly the old Decimal rounding: ``count / contacts`` rounded half up to 4 places."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rapportnotes.services import reports


def _decimal_share(count: int, contacts: int):
    return reports.round_half_up(Decimal(count) / contacts, "0.0001") if contacts else 0


def test_every_small_count_and_contacts_pair_matches_the_decimal_rounding():
    for contacts in range(0, 401):
        for count in range(0, contacts + 1):
            ours, old = reports._share(count, contacts), _decimal_share(count, contacts)
            assert ours == old and type(ours) is type(old), (count, contacts, ours, old)


@st.composite
def _pairs(draw):
    contacts = draw(st.integers(min_value=1, max_value=10**12))
    return draw(st.integers(min_value=0, max_value=contacts)), contacts


@settings(max_examples=2000, deadline=None)
@given(_pairs())
def test_any_count_and_contacts_pair_matches_the_decimal_rounding(pair):
    count, contacts = pair
    ours, old = reports._share(count, contacts), _decimal_share(count, contacts)
    assert ours == old and type(ours) is type(old)


def test_exact_halves_round_up():
    # 1/32 = 0.03125, 3/32 = 0.09375, 1/160 = 0.00625: each an exact tie at the 5th place
    assert [reports._share(c, n) for c, n in [(1, 32), (3, 32), (1, 160), (1, 20000)]] == \
        [0.0313, 0.0938, 0.0063, 0.0001]
