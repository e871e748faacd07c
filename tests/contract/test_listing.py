"""The store's listings for `procctl list` (by time, by key) and `procctl show` (the end
of a history), on every backend: what each returns."""

from __future__ import annotations

import json

from contract.backends import DEFINITION, running

from procctl.store import StoreContract
from procctl.store.records import Status


def _started(store: StoreContract, *ids: str, process: str = "contract") -> list[str]:
    """Create the instances in order; their started_at stamps."""
    store.put_definition(DEFINITION, "contract", "1", None, "source")
    stamps = []
    for instance_id in ids:
        if process == "contract":
            running(store, instance_id)
        else:
            store.create_instance(instance_id, DEFINITION, process, "1", "{}", "{}")
        stamps.append(store.get_instance(instance_id).started_at)
    return stamps


def test_pages_by_key_give_every_instance_once_newest_first(store: StoreContract) -> None:
    _started(store, *(f"i{n}" for n in range(7)))
    whole = store.instances_page(limit=100)
    assert [r.id for r in whole] == [f"i{n}" for n in reversed(range(7))]
    keys = [(r.started_at, r.id) for r in whole]
    assert keys == sorted(keys, reverse=True)
    pages, before = [], None
    while page := store.instances_page(limit=3, before=before):
        pages.append([r.id for r in page])
        before = (page[-1].started_at, page[-1].id)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == [r.id for r in whole]


def test_since_and_until_bound_the_start_time(store: StoreContract) -> None:
    stamps = _started(store, "a", "b", "c", "d")
    assert [r.id for r in store.instances_page(since=stamps[1])] == ["d", "c", "b"]
    assert [r.id for r in store.instances_page(until=stamps[2])] == ["b", "a"]
    assert [r.id for r in store.instances_page(since=stamps[1], until=stamps[3])] == ["c", "b"]
    assert store.instances_page(since=stamps[3], until=stamps[3]) == []
    # with a key: the page after b, within the times
    b = store.get_instance("b")
    assert [r.id for r in store.instances_page(since=stamps[0],
                                               before=(b.started_at, b.id))] == ["a"]


def test_status_and_process_filter_the_pages(store: StoreContract) -> None:
    _started(store, "r1", "done")
    _started(store, "other", process="another")
    store.finish_instance("done", Status.COMPLETED, result_json="{}")
    assert [r.id for r in store.instances_page(status=Status.RUNNING)] == ["other", "r1"]
    assert [r.id for r in store.instances_page(status=Status.COMPLETED)] == ["done"]
    assert [r.id for r in store.instances_page(process_name="another")] == ["other"]
    assert store.instances_page(process_name="another", status=Status.COMPLETED) == []
    # the records carry what list shows: parent and error
    store.finish_instance("r1", Status.FAILED, error_json=json.dumps({"message": "no"}))
    (failed,) = store.instances_page(status=Status.FAILED)
    assert json.loads(failed.error_json or "{}") == {"message": "no"}


def test_the_last_events_are_the_newest_oldest_first(store: StoreContract) -> None:
    _started(store, "busy", "quiet")
    store.add_events([("busy", f"2026-12-01T00:00:{n:02d}.000000+00:00", "log",
                       json.dumps({"message": f"m{n}"}), "step", None) for n in range(30)])
    assert store.count_events("busy") == 30
    assert store.count_events("quiet") == 0
    last = store.last_events("busy", 20)
    assert [json.loads(e.data_json)["message"] for e in last] == [f"m{n}" for n in range(10, 30)]
    assert [e.id for e in last] == sorted(e.id for e in last)
    assert [e.id for e in store.last_events("busy", 100)] == [e.id for e in store.events("busy")]
    assert store.last_events("quiet", 20) == []


def test_instances_changed_after_a_key_oldest_change_first(store: StoreContract) -> None:
    for name in ("i1", "i2", "i3"):
        running(store, name)
    store.finish_instance("i2", Status.COMPLETED, result_json="1")
    changed = store.instances_changed_after(("", ""), 10)
    assert [r.id for r in changed][-1] == "i2"  # its change is the latest
    assert {r.id for r in changed} == {"i1", "i2", "i3"}
    last = changed[-1]
    assert store.instances_changed_after((last.updated_at, last.id), 10) == []
    first_two = store.instances_changed_after(("", ""), 2)
    rest = store.instances_changed_after((first_two[-1].updated_at, first_two[-1].id), 10)
    assert [r.id for r in first_two + rest] == [r.id for r in changed]


def test_definitions_are_listed_newest_first_without_their_text(store: StoreContract) -> None:
    store.put_definition("a" * 64, "first", "1", "/p/first.toml", "source one")
    store.put_definition("b" * 64, "second", None, None, "source two")
    listed = store.list_definitions(10)
    assert [d.name for d in listed] == ["second", "first"]
    assert not hasattr(listed[0], "source")
    assert (listed[1].sha256, listed[1].version, listed[1].path) == ("a" * 64, "1",
                                                                     "/p/first.toml")
    assert [d.name for d in store.list_definitions(1)] == ["second"]
