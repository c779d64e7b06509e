"""The pure parts of process isolation: frames, worker exits, restart policy, configuration."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mofa_kernel import PluginConfigError
from mofa_kernel._config import KernelSettings, PluginSection, load_settings
from mofa_kernel._isolation import RestartPolicy, WorkerExit
from mofa_kernel._isolation._frames import MAX_FRAME, FrameDecoder, FrameError, encode
from mofa_kernel._isolation._host import _poll
from mofa_kernel._isolation._setup import restart_policy

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.lists(st.lists(json_values, max_size=4), min_size=1, max_size=6), st.data())
def test_frames_survive_any_cutting_of_the_stream(
    bodies: list[list[object]], data: st.DataObject
) -> None:
    messages = [["ok", *body] for body in bodies]
    stream = b"".join(encode(message) for message in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = FrameDecoder()
    received = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        received += decoder.feed(stream[start:end])
    assert received == messages


def test_a_frame_is_its_length_then_its_json() -> None:
    assert encode(["ok", 1, "é"]) == b"\x00\x00\x00\x0d" + '["ok",1,"é"]'.encode()


@pytest.mark.parametrize(
    ("stream", "problem"),
    [
        (b"\x00\x00\x00\x03abc", "frame is not JSON"),
        (b"\x00\x00\x00\x02{}", "frame is not a message"),
        (b"\x00\x00\x00\x02[]", "frame is not a message"),
        ((MAX_FRAME + 1).to_bytes(4, "big") + b"[", "the limit is"),
    ],
)
def test_a_broken_frame_is_refused(stream: bytes, problem: str) -> None:
    with pytest.raises(FrameError, match=problem):
        FrameDecoder().feed(stream)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe whose read end is non-blocking, as the host's end of the wire is."""
    reads, writes = os.pipe()
    os.set_blocking(reads, False)
    yield reads, writes
    for fd in (reads, writes):
        with contextlib.suppress(OSError):  # a test closed it already
            os.close(fd)


def test_the_hosts_poll_reads_what_the_pipe_has(pipe: tuple[int, int]) -> None:
    reads, writes = pipe
    assert _poll(reads, 0.0) is None
    os.write(writes, b"answer")
    assert _poll(reads, 0.0) == b"answer"
    os.close(writes)
    assert _poll(reads, 0.0) == b""  # the worker's end closed: end of file, not "nothing yet"


def test_the_hosts_poll_looks_until_the_answer_comes(pipe: tuple[int, int]) -> None:
    reads, writes = pipe
    writer = threading.Thread(target=os.write, args=(writes, b"late"))
    writer.start()
    assert _poll(reads, 60.0) == b"late"  # 60 s: only a guard, the answer ends the wait
    writer.join()


@pytest.mark.parametrize(
    ("returncode", "limit", "text", "cause"),
    [
        (1, None, "worker exited with code 1", "exited"),
        (0, None, "worker exited with code 0", "exited"),
        (-signal.SIGSEGV, None, "worker killed by SIGSEGV", "signal"),
        (-signal.SIGKILL, 512, "worker killed by SIGKILL", "signal"),
        (86, 512, "worker exceeded its memory limit (512 MiB)", "memory"),
        (86, None, "worker exited with code 86", "exited"),
    ],
)
def test_how_a_worker_ended_reads(
    returncode: int, limit: int | None, text: str, cause: str
) -> None:
    ended = WorkerExit.from_status(returncode, limit, 86)
    assert str(ended) == text
    assert ended.cause == cause


def test_a_deadline_end_names_the_call_and_the_deadline() -> None:
    ended = WorkerExit("deadline", deadline=2.0, hook="execute")
    assert str(ended) == "worker ended: execute overran its deadline (2s)"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_policy_allows_max_restarts_within_the_window() -> None:
    clock = Clock()
    policy = RestartPolicy(max_restarts=3, restart_window=60.0, clock=clock)
    assert [policy.allow() for _ in range(4)] == [True, True, True, False]
    assert policy.recent == 3
    clock.now += 59.9
    assert not policy.allow()
    clock.now += 0.1  # the first three leave the window together
    assert policy.recent == 0
    assert policy.allow()


def test_restarts_spread_over_time_never_exhaust_the_policy() -> None:
    clock = Clock()
    policy = RestartPolicy(max_restarts=2, restart_window=10.0, clock=clock)
    for _ in range(20):
        assert policy.allow()
        clock.now += 5.0


def test_no_restarts_at_all_and_reset() -> None:
    policy = RestartPolicy(max_restarts=0)
    assert not policy.allow()
    one = RestartPolicy(max_restarts=1)
    assert one.allow()
    assert not one.allow()
    one.reset()
    assert one.allow()


@pytest.mark.parametrize(
    ("max_restarts", "window", "problem"),
    [(-1, 60.0, "max_restarts"), (3, 0.0, "restart_window")],
)
def test_a_nonsense_policy_is_refused(max_restarts: int, window: float, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RestartPolicy(max_restarts, window)


def test_isolation_settings_in_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "mofa.toml"
    config.write_text(
        '[kernel]\nisolation = "process"\n'
        '[plugins.calc]\nisolation = "inline"\n'
        "[plugins.llm]\nmemory_limit = 512\nmax_restarts = 5\nrestart_window = 10.0\n",
        encoding="utf-8",
    )
    settings = load_settings(config)
    assert settings.plugin_isolation("calc") == "inline"
    assert settings.plugin_isolation("llm") == "process"
    assert settings.plugin_isolation("unnamed") == "process"
    llm = settings.plugin_section("llm")
    assert (llm.memory_limit, llm.max_restarts, llm.restart_window) == (512, 5, 10.0)
    policy = restart_policy("llm", settings)
    assert (policy.max_restarts, policy.restart_window) == (5, 10.0)


def test_isolation_defaults() -> None:
    section = PluginSection()
    assert (section.isolation, section.memory_limit) == (None, None)
    assert (section.max_restarts, section.restart_window) == (3, 60.0)
    assert KernelSettings().plugin_isolation("any") == "inline"


def test_wrong_isolation_settings_are_one_line_each(tmp_path: Path) -> None:
    config = tmp_path / "mofa.toml"
    config.write_text(
        '[kernel]\nisolation = "thread"\n'
        '[plugins.bad]\nisolation = "forked"\nmemory_limit = 0\n'
        "max_restarts = -1\nrestart_window = 0\n",
        encoding="utf-8",
    )
    with pytest.raises(PluginConfigError) as raised:
        load_settings(config)
    lines = [line.split(": ", 1)[1] for line in str(raised.value).splitlines()]
    assert lines == [
        'kernel.isolation: expected one of "inline", "process", got "thread"',
        'plugins.bad.isolation: expected one of "inline", "process", got "forked"',
        "plugins.bad.memory_limit: expected a number of MiB > 0, got 0",
        "plugins.bad.max_restarts: expected an integer >= 0, got -1",
        "plugins.bad.restart_window: expected a number of seconds > 0, got 0",
    ]


def test_a_loop_hears_of_awaited_io_from_its_living_waiters_only() -> None:
    import asyncio
    import gc

    from mofa_kernel._awaited_io import expect_io, io_awaited

    class Waiter:
        awaiting_io = False

    loop, other = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert not io_awaited(loop)  # nothing registered with it
        waiter = Waiter()
        expect_io(loop, waiter)
        assert not io_awaited(loop)
        waiter.awaiting_io = True
        assert io_awaited(loop)
        assert not io_awaited(other)  # each loop hears of its own waiters
        del waiter
        gc.collect()
        assert not io_awaited(loop)  # a waiter that is gone awaits nothing
    finally:
        loop.close()
        other.close()
