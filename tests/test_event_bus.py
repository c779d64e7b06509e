"""The event stream: isolated observers, bounded subscriptions that count what they drop."""

from __future__ import annotations

import asyncio

import pytest

from mofa_kernel import PluginEvent
from mofa_kernel._event_bus import EventBus

Failure = tuple[str, object, BaseException]


def _event(n: int) -> PluginEvent:
    return PluginEvent.PluginLoaded(plugin_id=f"p{n}")


def _bus(failures: list[Failure]) -> EventBus:
    return EventBus(lambda name, event, exc: failures.append((name, event, exc)))


def test_listeners_and_observers_all_receive_in_order() -> None:
    failures: list[Failure] = []
    bus = _bus(failures)
    seen: list[str] = []
    bus.add_listener(lambda e: seen.append(f"listener {e.plugin_id}"))  # type: ignore[attr-defined]
    bus.set_observers([("mon", lambda e: seen.append(f"mon {e.plugin_id}"))])  # type: ignore[attr-defined]
    bus.emit(_event(1))
    assert seen == ["listener p1", "mon p1"]
    assert bus.emitted == 1
    assert failures == []


def test_a_raising_observer_is_reported_and_others_still_run() -> None:
    failures: list[Failure] = []
    bus = _bus(failures)
    seen: list[str] = []

    def broken(event: object) -> None:
        raise RuntimeError("observer bug")

    bus.set_observers([("broken", broken), ("fine", lambda e: seen.append("fine"))])
    bus.emit(_event(1))
    assert seen == ["fine"]
    [(name, event, exc)] = failures
    assert name == "broken"
    assert event == _event(1)
    assert str(exc) == "observer bug"


def test_failure_report_is_not_fed_back_to_the_failing_observer() -> None:
    calls: list[str] = []
    bus: EventBus

    def broken(event: PluginEvent) -> None:
        calls.append(event.variant)
        raise RuntimeError("always")

    def report(name: str, event: object, exc: BaseException) -> None:
        bus.emit(PluginEvent.PluginError(plugin_id=name, error=str(exc)))

    bus = EventBus(report)
    bus.set_observers([("broken", broken)])
    bus.emit(_event(1))
    assert calls == ["PluginLoaded"]


async def test_subscription_receives_events_in_order() -> None:
    bus = _bus([])
    with bus.subscribe(10) as subscription:
        for n in range(3):
            bus.emit(_event(n))
        got = [await subscription.__anext__() for _ in range(3)]
    assert [e.plugin_id for e in got] == ["p0", "p1", "p2"]  # type: ignore[attr-defined]


async def test_slow_subscriber_drops_oldest_and_counts() -> None:
    bus = _bus([])
    subscription = bus.subscribe(3)
    for n in range(10):
        bus.emit(_event(n))
    assert subscription.dropped == 7
    assert bus.dropped == 7
    subscription.close()
    remaining = [e.plugin_id async for e in subscription]  # type: ignore[attr-defined]
    assert remaining == ["p7", "p8", "p9"]


async def test_subscriber_waits_for_the_next_event() -> None:
    bus = _bus([])
    subscription = bus.subscribe()
    waiter = asyncio.create_task(subscription.__anext__())
    await asyncio.sleep(0)
    assert not waiter.done()
    bus.emit(_event(5))
    assert (await waiter) == _event(5)


async def test_close_ends_iteration() -> None:
    bus = _bus([])
    subscription = bus.subscribe()
    waiter = asyncio.create_task(subscription.__anext__())
    await asyncio.sleep(0)
    subscription.close()
    with pytest.raises(StopAsyncIteration):
        await waiter


def test_subscription_needs_room() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        _bus([]).subscribe(0)


async def test_async_observer_runs_as_task_and_its_failure_is_reported() -> None:
    failures: list[Failure] = []
    bus = _bus(failures)
    seen: list[str] = []

    async def fine(event: PluginEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.variant)

    async def broken(event: PluginEvent) -> None:
        await asyncio.sleep(0)
        raise ValueError("async bug")

    bus.set_observers([("fine", fine), ("broken", broken)])
    bus.emit(_event(1))
    await bus.drain()
    assert seen == ["PluginLoaded"]
    assert [(name, str(exc)) for name, _, exc in failures] == [("broken", "async bug")]
