"""The retry policy of a task step: waits between attempts and which errors retry."""

from __future__ import annotations

import pytest

from procctl.agent.definition import parse_definition
from procctl.agent.definition.model import RetryPolicy, TaskStep


def _policy(retry: str) -> RetryPolicy:
    definition = parse_definition(f"""
[process]
name = "p"

[[steps]]
id = "t"
task = "log"
with = {{ message = "hi" }}
{retry}
""")
    step = definition.steps[0]
    assert isinstance(step, TaskStep)
    return step.retry


def test_fixed_backoff_waits_the_same_each_time() -> None:
    policy = _policy('retry = { attempts = 4, delay = "2s" }')
    assert policy.attempts == 4
    assert [policy.wait_before(n, 0.0) for n in (1, 2, 3)] == [2.0, 2.0, 2.0]


def test_exponential_backoff_grows_by_the_factor_up_to_max_delay() -> None:
    policy = _policy('retry = { attempts = 6, delay = "1s", backoff = "exponential", '
                     'factor = 3, max_delay = "20s" }')
    assert [policy.wait_before(n, 0.0) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 20.0]


def test_jitter_adds_at_most_its_share_of_the_wait() -> None:
    policy = _policy('retry = { delay = "10s", jitter = 0.2 }')
    assert policy.wait_before(1, 0.0) == 10.0
    assert policy.wait_before(1, 0.999) == pytest.approx(11.998)
    assert _policy('retry = { delay = "10s", jitter = true }').jitter == 0.5


def test_on_limits_which_errors_retry() -> None:
    policy = _policy('retry = { on = ["timeout", "ConnectionError"] }')
    assert policy.retries(("timeout",))
    assert policy.retries(("ConnectionRefusedError", "ConnectionError", "OSError"))
    assert not policy.retries(("task_error",))
    assert _policy('retry = { attempts = 2 }').retries(("anything",))


def test_short_form_still_works() -> None:
    policy = _policy('retries = 2\nretry_delay = "5s"')
    assert (policy.attempts, policy.delay, policy.backoff) == (3, 5.0, "fixed")


def test_no_retry_means_one_attempt() -> None:
    assert _policy("").attempts == 1
