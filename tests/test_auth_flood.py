"""Basic auth under a flood of wrong passwords: a wrong credential costs the flood, not the valid
users. Identical checks share one bcrypt run, failures are cached (by HMAC key, invalidated by a
changed hash), and checks from connections that failed queue behind those that did not.

bcrypt runs at cost 4 here: these tests count bcrypt runs and check the order of checks; how fast
a valid scraper is answered during a flood is measured by ``python -m benchmarks auth_flood``.
"""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import trio
import trio.testing
from http_client import http_request

from loxone_trio_exporter.web import MetricsBody, MiniserverView, create_app, serve_web
from loxone_trio_exporter.web._auth import (
    FAILED_ADDRESS_PENALTY,
    FAILED_CONNECTION_PENALTY,
    BasicAuthChecker,
    ClientAddress,
    _FailureHistory,
    _PenaltyLimiter,
    protect,
)
from loxone_trio_exporter.web._web_config import BasicAuthUser, WebConfigFile
from loxone_trio_exporter.web._web_config_source import FixedWebConfig

PASSWORD = b"scrape-secret"
OTHER_PASSWORD = b"other-secret"
FAST_HASH = bcrypt.hashpw(PASSWORD, bcrypt.gensalt(4))
OTHER_FAST_HASH = bcrypt.hashpw(OTHER_PASSWORD, bcrypt.gensalt(4))
FLOOD_CLIENTS = 300
SCRAPER: ClientAddress = ("10.0.0.1", 40000)


def web_config(**users: bytes) -> WebConfigFile:
    return WebConfigFile(
        Path("web.yml"),
        tls=None,
        ssl_context=None,
        basic_auth_users=tuple(BasicAuthUser(name, hashed) for name, hashed in users.items()),
    )


def flooder(index: int, host: str = "10.0.0.66") -> ClientAddress:
    return (host, 50000 + index)


async def test_identical_concurrent_wrong_checks_run_bcrypt_once() -> None:
    checker = BasicAuthChecker()
    config = web_config(prometheus=FAST_HASH)
    answers: list[bool] = []

    async def wrong(index: int) -> None:
        answers.append(await checker.check(config, "prometheus", b"guess", client=flooder(index)))

    async with trio.open_nursery() as nursery:
        for index in range(FLOOD_CLIENTS):
            nursery.start_soon(wrong, index)
    assert answers == [False] * FLOOD_CLIENTS
    statistics = checker.statistics()
    assert statistics.bcrypt_checks == 1
    # Each of the others waited for that one run, or (had it ended) found its answer cached.
    assert statistics.shared_checks + statistics.failure_cache_hits == FLOOD_CLIENTS - 1
    assert statistics.bcrypt_checks_in_progress == 0


async def test_a_repeated_failure_is_answered_from_the_cache() -> None:
    checker = BasicAuthChecker()
    config = web_config(prometheus=FAST_HASH)
    for _ in range(3):
        assert not await checker.check(config, "prometheus", b"guess")
    statistics = checker.statistics()
    assert (statistics.bcrypt_checks, statistics.failure_cache_hits) == (1, 2)
    assert statistics.cache_hits == 0


async def test_a_cached_failure_does_not_block_a_valid_credential() -> None:
    checker = BasicAuthChecker()
    config = web_config(prometheus=FAST_HASH)
    assert not await checker.check(config, "prometheus", b"guess")
    valid: list[bool] = []

    async def wrong(index: int) -> None:
        assert not await checker.check(config, "prometheus", b"guess", client=flooder(index))

    async def right() -> None:
        valid.append(await checker.check(config, "prometheus", PASSWORD, client=SCRAPER))

    async with trio.open_nursery() as nursery:
        for index in range(FLOOD_CLIENTS):
            nursery.start_soon(wrong, index)
        nursery.start_soon(right)
    assert valid == [True]
    statistics = checker.statistics()
    # The failure once, the valid credential once; the flood ran no bcrypt at all.
    assert statistics.bcrypt_checks == 2
    assert statistics.failure_cache_hits == FLOOD_CLIENTS


async def test_a_changed_hash_invalidates_a_cached_failure() -> None:
    checker = BasicAuthChecker()
    assert not await checker.check(web_config(alice=FAST_HASH), "alice", OTHER_PASSWORD)
    assert not await checker.check(web_config(alice=FAST_HASH), "alice", OTHER_PASSWORD)
    # The operator changed alice's password to the one that failed: it works at once.
    assert await checker.check(web_config(alice=OTHER_FAST_HASH), "alice", OTHER_PASSWORD)
    statistics = checker.statistics()
    assert (statistics.bcrypt_checks, statistics.failure_cache_hits) == (2, 1)


async def test_a_user_added_after_a_failure_is_checked_against_the_new_hash() -> None:
    checker = BasicAuthChecker()
    assert not await checker.check(web_config(alice=FAST_HASH), "bob", OTHER_PASSWORD)
    config = web_config(alice=FAST_HASH, bob=OTHER_FAST_HASH)
    assert await checker.check(config, "bob", OTHER_PASSWORD)
    assert checker.statistics().bcrypt_checks == 2


async def test_unknown_and_known_users_fail_the_same_way() -> None:
    """The timing-equality property with a failure cache: an unknown user's failure is cached
    exactly as a known user's wrong password is (the first costs one bcrypt run at the configured
    cost, the repeats none), so neither the first answer nor a repeat tells the two apart."""
    config = web_config(alice=FAST_HASH)
    seen = []
    for user in ("alice", "mallory"):
        checker = BasicAuthChecker()
        answers = [await checker.check(config, user, b"guess") for _ in range(3)]
        seen.append((answers, checker.statistics()))
    assert seen[0] == seen[1]
    assert seen[0][0] == [False, False, False]


async def test_a_failure_never_pushes_a_cached_success_out() -> None:
    checker = BasicAuthChecker(cache_size=1, failure_cache_size=2)
    config = web_config(alice=FAST_HASH)
    assert await checker.check(config, "alice", PASSWORD)
    for guess in range(5):
        assert not await checker.check(config, "alice", b"guess-%d" % guess)
    assert await checker.check(config, "alice", PASSWORD)
    assert checker.statistics().cache_hits == 1


async def test_no_password_in_clear_in_any_cache() -> None:
    checker = BasicAuthChecker()
    config = web_config(alice=FAST_HASH)
    await checker.check(config, "alice", PASSWORD)
    await checker.check(config, "alice", OTHER_PASSWORD)
    held = [*checker._successes._keys, *checker._failures._keys]
    assert len(held) == 2
    for key in held:
        assert isinstance(key, bytes)
        assert len(key) == 32  # an HMAC-SHA256, nothing else
        for secret in (PASSWORD, OTHER_PASSWORD, b"alice", FAST_HASH):
            assert secret not in key


# --- the queue order: a flooding connection waits behind itself ----------------------------------


async def test_a_fresh_connection_overtakes_connections_that_failed() -> None:
    """With one bcrypt thread and many distinct wrong passwords (nothing to share or cache), a
    valid check from a connection that never failed is the next to run, whatever is queued."""
    checker = BasicAuthChecker(bcrypt_threads=1)
    config = web_config(prometheus=FAST_HASH)
    flood = 20
    for index in range(flood):  # each flooding connection has failed once already
        assert not await checker.check(config, "prometheus", b"warm-up", client=flooder(index))
    finished: list[str] = []

    async def wrong(index: int) -> None:
        guess = b"guess-%d" % index
        assert not await checker.check(config, "prometheus", guess, client=flooder(index))
        finished.append(f"flood {index}")

    async def right() -> None:
        # The same address as the flood (loopback, a NAT), but a connection that never failed.
        scraper = ("10.0.0.66", 40000)
        assert await checker.check(config, "prometheus", PASSWORD, client=scraper)
        finished.append("scraper")

    async with trio.open_nursery() as nursery:
        for index in range(flood):
            nursery.start_soon(wrong, index)
        await trio.testing.wait_all_tasks_blocked()  # every flood check is queued or running
        queued_at = len(finished)
        nursery.start_soon(right)
    # Only the check running when the scraper's was queued may finish before it.
    assert finished.index("scraper") - queued_at <= 1
    assert len(finished) == flood + 1


def test_failure_history_penalizes_the_connection_and_the_address() -> None:
    history = _FailureHistory()
    assert history.penalty(SCRAPER) == 0
    assert history.penalty(None) == 0
    history.record(flooder(1), success=False)
    both = FAILED_CONNECTION_PENALTY + FAILED_ADDRESS_PENALTY
    assert history.penalty(flooder(1)) == both
    assert history.penalty(flooder(2)) == FAILED_ADDRESS_PENALTY  # same address, new connection
    assert history.penalty(SCRAPER) == 0
    history.record(flooder(1), success=True)  # a success forgives
    assert history.penalty(flooder(1)) == 0


async def hold_in_turn(limiter: _PenaltyLimiter, arrivals: list[tuple[str, int]]) -> list[str]:
    """Each of ``arrivals`` (name, penalty) queues in turn behind a first holder, then holds the
    slot one virtual second; the order they got it in."""
    order: list[str] = []

    async def hold(name: str, penalty: int) -> None:
        async with limiter.slot(penalty):
            order.append(name)
            await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        for name, penalty in [("first", 0), *arrivals]:
            nursery.start_soon(hold, name, penalty)
            await trio.testing.wait_all_tasks_blocked()
    return order


async def test_limiter_hands_slots_out_by_arrival_plus_penalty(autojump_clock) -> None:
    order = await hold_in_turn(
        _PenaltyLimiter(1),
        [("failed 1", 100), ("same address 1", 50), ("failed 2", 100), ("fresh", 0)],
    )
    assert order == ["first", "fresh", "same address 1", "failed 1", "failed 2"]
    assert trio.current_time() == 5.0  # one at a time, no slot lost


async def test_limiter_never_starves_a_penalized_waiter(autojump_clock) -> None:
    """A penalty is a number of later arrivals that may go first, not a tier: a scraper taken
    for a flood waits longer, but a stream of fresh arrivals cannot hold it back for ever."""
    later = [(f"fresh {index}", 0) for index in range(10)]
    order = await hold_in_turn(_PenaltyLimiter(1), [("penalized", 3), *later])
    # Arrival 1 with penalty 3 queues as arrival 4: fresh arrivals 2 and 3 go before it.
    assert order.index("penalized") == 3


async def test_limiter_gives_a_cancelled_waiters_slot_to_the_next(autojump_clock) -> None:
    limiter = _PenaltyLimiter(1)
    order: list[str] = []

    async def hold(name: str) -> None:
        async with limiter.slot():
            order.append(name)
            await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, "first")
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.5):
            await hold("cancelled while waiting")
        nursery.start_soon(hold, "next")
    assert order == ["first", "next"]
    assert trio.current_time() == 2.0


async def test_a_shared_check_whose_runner_is_cancelled_is_run_by_a_waiter() -> None:
    checker = BasicAuthChecker(bcrypt_threads=1)
    config = web_config(prometheus=FAST_HASH)
    answers: list[bool] = []

    async def runner(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            answers.append(await checker.check(config, "prometheus", PASSWORD))

    async def waiter() -> None:
        answers.append(await checker.check(config, "prometheus", PASSWORD))

    # Hold the only bcrypt thread, so the runner of the check must queue for it.
    async with trio.open_nursery() as nursery, checker._bcrypt_limiter.slot():
        runner_scope = await nursery.start(runner)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert checker.statistics().shared_checks == 1
        runner_scope.cancel()  # its client went away before bcrypt ran
        await trio.testing.wait_all_tasks_blocked()
        assert checker.statistics().bcrypt_checks_in_progress == 1  # the waiter's own
    assert answers == [True]
    assert checker.statistics().bcrypt_checks == 1


# --- over a real server --------------------------------------------------------------------------


class _FixedSource:
    async def render_metrics(self, accept: str | None, accept_encoding: str | None) -> MetricsBody:
        return MetricsBody(b"up 1\n", "text/plain; version=0.0.4; charset=utf-8")

    def miniservers(self) -> list[MiniserverView]:
        return [MiniserverView("home", True, "streaming")]


def basic(user: str, password: bytes) -> list[tuple[str, str]]:
    token = base64.b64encode(user.encode() + b":" + password).decode()
    return [("Authorization", f"Basic {token}")]


async def test_a_flood_of_one_wrong_password_over_http_runs_bcrypt_once(nursery) -> None:
    checker = BasicAuthChecker()
    app = protect(
        create_app(_FixedSource()),
        FixedWebConfig(web_config(prometheus=FAST_HASH)),
        checker=checker,
    )
    shutdown = trio.Event()
    urls = await nursery.start(serve_web, app, ["127.0.0.1:0"], shutdown)
    port = int(urls[0].rsplit(":", 1)[1])
    statuses: list[int] = []

    async def request(headers: list[tuple[str, str]]) -> None:
        with trio.fail_after(30):
            statuses.append((await http_request(port, "/metrics", headers=headers)).status)

    async with trio.open_nursery() as clients:
        for _ in range(50):
            clients.start_soon(request, basic("prometheus", b"guess"))
    assert statuses == [401] * 50
    await request(basic("prometheus", PASSWORD))
    assert statuses[-1] == 200
    statistics = checker.statistics()
    assert statistics.bcrypt_checks == 2  # the wrong password once, the right one once
    assert statistics.shared_checks + statistics.failure_cache_hits == 49
    shutdown.set()
