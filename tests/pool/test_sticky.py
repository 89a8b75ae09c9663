"""The bounded maps with a TTL behind session and content affinity (pool/sticky.py)."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codexgate.pool.sticky import BoundedTTLMap, content_key, scoped_session_key


def test_entries_expire_after_the_ttl_since_their_last_use() -> None:
    held: BoundedTTLMap[str, str] = BoundedTTLMap(10, ttl=60)
    held.put("s", "a", now=0)
    assert held.get("s", now=59) == "a"  # reading starts the TTL over
    assert held.get("s", now=118) == "a"
    assert held.get("s", now=178) is None and "s" not in held


def test_the_least_recently_used_entry_goes_first_past_the_bound() -> None:
    held: BoundedTTLMap[str, int] = BoundedTTLMap(3, ttl=1000)
    for n, key in enumerate("abc"):
        held.put(key, n, now=0)
    assert held.get("a", now=1) == 0  # a is now the most recently used
    held.put("d", 3, now=2)
    assert len(held) == 3 and "b" not in held and held.get("a", now=3) == 0


def test_remove_value_and_purge_expired() -> None:
    held: BoundedTTLMap[str, str] = BoundedTTLMap(10, ttl=10)
    held.put("s1", "a", now=0)
    held.put("s2", "b", now=0)
    held.put("s3", "a", now=5)
    assert held.remove_value("a") == 2 and len(held) == 1
    held.put("s4", "c", now=5)
    assert held.purge_expired(now=12) == 1 and "s4" in held and "s2" not in held
    assert held.pop("s4") == "c" and held.pop("s4") is None


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        BoundedTTLMap(0, ttl=1)


def test_content_keys_are_stable_short_and_distinct() -> None:
    key = content_key("gAAAAB-encrypted")
    assert key == content_key("gAAAAB-encrypted") and len(key) == 32
    assert int(key, 16) >= 0 and key != content_key("gAAAAB-encrypted.")


def test_session_keys_are_scoped_per_api_key() -> None:
    assert scoped_session_key("k1", "s") != scoped_session_key("k2", "s")
    assert scoped_session_key(None, "s") == scoped_session_key(None, "s")


operations = st.lists(
    st.tuples(st.sampled_from(["put", "get"]), st.sampled_from("abcdef"), st.integers(0, 5)), max_size=60
)


@settings(max_examples=200, deadline=None)
@given(operations=operations, bound=st.integers(1, 4))
def test_matches_a_plain_model(operations: list[tuple[str, str, int]], bound: int) -> None:
    held: BoundedTTLMap[str, int] = BoundedTTLMap(bound, ttl=10)
    model: OrderedDict[str, tuple[int, float]] = OrderedDict()
    now = 0.0
    for op, key, value in operations:
        now += value  # time only moves forward
        if op == "put":
            held.put(key, value, now)
            model[key] = (value, now + 10)
            model.move_to_end(key)
            while len(model) > bound:
                model.popitem(last=False)
        else:
            entry = model.get(key)
            expected = None
            if entry is not None and entry[1] > now:
                expected = entry[0]
                model[key] = (entry[0], now + 10)
                model.move_to_end(key)
            elif entry is not None:
                del model[key]
            assert held.get(key, now) == expected
        assert len(held) <= bound
