"""Store.get_instance by an ID prefix: exact, unique, ambiguous, too short; `%` and `_`
are characters of the prefix, not patterns."""

from __future__ import annotations

from pathlib import Path

import pytest

from procctl.store import Store
from procctl.store.errors import AmbiguousId, NotFound


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "procctl.db")
    store.put_definition("abc", "hello", "1", "/x/hello.toml", "[process]\nname='hello'\n")
    return store


def _instance(store: Store, instance_id: str, name: str = "hello") -> None:
    store.create_instance(instance_id, "abc", name, "1", "{}", '{"kind": "cli"}')


def test_percent_and_underscore_match_only_themselves(store: Store) -> None:
    _instance(store, "abcdef123456")
    for pattern in ("abc_", "ab%", "%%%%", "____", "abcd%", "a_cdef"):
        with pytest.raises(NotFound, match="no instance"):
            store.get_instance(pattern)
    _instance(store, "ab_d%f000000")
    assert store.get_instance("ab_d").id == "ab_d%f000000"
    assert store.get_instance("ab_d%").id == "ab_d%f000000"


def test_prefix_is_case_sensitive(store: Store) -> None:
    _instance(store, "abcdef123456")
    with pytest.raises(NotFound, match="no instance 'ABCD'"):
        store.get_instance("ABCD")


def test_ambiguous_prefix_lists_the_candidates(store: Store) -> None:
    _instance(store, "abcd11111111", "first")
    _instance(store, "abcd22222222", "second")
    _instance(store, "abce33333333", "other")
    store.finish_instance("abcd11111111", "failed", error_json="{}")
    with pytest.raises(AmbiguousId) as caught:
        store.get_instance("abcd")
    message = caught.value.message
    assert "'abcd' is ambiguous: it matches 2 instances" in message
    assert "abcd22222222 (second, running)" in message
    assert "abcd11111111 (first, failed)" in message
    assert "abce" not in message
    assert caught.value.hint and "more characters" in caught.value.hint
    assert [c[0] for c in caught.value.candidates] == ["abcd22222222", "abcd11111111"]
    assert store.get_instance("abcd2").id == "abcd22222222"


def test_many_candidates_are_cut_to_the_newest_few(store: Store) -> None:
    for n in range(8):
        _instance(store, f"beef{n:08d}")
    with pytest.raises(AmbiguousId, match=r"matches 8 instances.*and 3 more") as caught:
        store.get_instance("beef")
    assert len(caught.value.candidates) == 5


def test_a_short_prefix_is_refused_even_when_unique(store: Store) -> None:
    _instance(store, "abcdef123456")
    with pytest.raises(AmbiguousId, match=r"'abc' is too short .*at least 4") as caught:
        store.get_instance("abc")
    assert "abcdef123456 (hello, running)" in caught.value.message
    with pytest.raises(NotFound, match="no instance 'xyz'"):
        store.get_instance("xyz")
    with pytest.raises(NotFound, match="no instance ''"):
        store.get_instance("")


def test_the_full_id_always_wins(store: Store) -> None:
    _instance(store, "abcd")
    _instance(store, "abcd12345678")
    assert store.get_instance("abcd").id == "abcd"
