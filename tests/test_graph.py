"""Dependency ordering: topological, priority then id among equals, problems explained."""

from __future__ import annotations

from mofa_kernel._graph import DependencyProblem, Dependents, resolve


def test_dependencies_come_first() -> None:
    result = resolve({"app": ["db", "cache"], "db": [], "cache": ["db"]}, {})
    assert result.order == ("db", "cache", "app")
    assert result.problems == {}


def test_ties_break_by_priority_then_id() -> None:
    result = resolve({"b": [], "a": [], "c": [], "z": []}, {"c": 100, "z": 100})
    assert result.order == ("c", "z", "a", "b")


def test_priority_never_overrides_a_dependency() -> None:
    result = resolve({"high": ["low"], "low": []}, {"high": 200, "low": 0})
    assert result.order == ("low", "high")


def test_missing_dependency_blocks_only_its_dependents() -> None:
    result = resolve({"a": [], "b": ["ghost"], "c": ["b"], "d": ["a"]}, {})
    assert result.order == ("a", "d")
    assert result.problems["b"] == DependencyProblem("missing", ("b", "ghost"))
    assert result.problems["c"] == DependencyProblem("missing", ("c", "b", "ghost"))
    assert result.problems["c"].describe() == "missing dependency 'ghost' (c -> b -> ghost)"


def test_cycle_is_reported_with_its_chain() -> None:
    result = resolve({"x": ["y"], "y": ["z"], "z": ["x"], "ok": [], "w": ["x"]}, {})
    assert result.order == ("ok",)
    assert result.problems["x"].kind == "cycle"
    assert result.problems["x"].chain == ("x", "y", "z", "x")
    assert result.problems["y"].chain == ("x", "y", "z", "x")
    assert result.problems["w"].kind == "blocked"
    assert result.problems["w"].chain == ("w", "x", "y", "z", "x")
    assert result.problems["x"].describe() == "dependency cycle x -> y -> z -> x"


def test_self_dependency_is_a_cycle() -> None:
    result = resolve({"me": ["me"]}, {})
    assert result.problems["me"].chain == ("me", "me")


def test_unavailable_dependency_names_the_reason() -> None:
    result = resolve({"skill": ["calculator"], "tutor": ["skill"]}, {}, {"calculator": "failed"})
    assert result.order == ()
    assert result.problems["skill"].describe() == "dependency calculator failed"
    assert (
        result.problems["tutor"].describe()
        == "dependency calculator failed (tutor -> skill -> calculator)"
    )


def test_duplicate_dependency_entries_count_once() -> None:
    result = resolve({"a": [], "b": ["a", "a"]}, {})
    assert result.order == ("a", "b")


def test_large_layered_graph_is_linear_in_order() -> None:
    deps = {f"p{i}": [f"p{i - 10}"] if i >= 10 else [] for i in range(2000)}
    result = resolve(deps, {})
    position = {pid: n for n, pid in enumerate(result.order)}
    assert len(result.order) == 2000
    assert all(position[d] < position[p] for p, ds in deps.items() for d in ds)


def test_dependents_are_listed_once_each_in_number_order_and_unknown_ids_are_left_out() -> None:
    index = {"db": 0, "cache": 1, "app": 2, "web": 3}
    needs = [(), ("db",), ("cache", "db", "db", "ghost"), ("db", "app")]
    dependents = Dependents(needs, index)
    assert dependents.of(0) == [1, 2, 3]
    assert dependents.of(1) == [2]
    assert dependents.of(2) == [3]
    assert dependents.of(3) == []


def test_a_large_graph_resolves_in_dependency_then_priority_order() -> None:
    deps = {f"p{n}": [f"p{n - 1}"] if n % 10 else [] for n in range(1000)}
    priorities = {f"p{n}": 100 for n in range(0, 1000, 20)}
    order = resolve(deps, priorities).order
    assert sorted(order) == sorted(deps)
    place = {pid: n for n, pid in enumerate(order)}
    assert all(place[dep] < place[pid] for pid, needed in deps.items() for dep in needed)
    # Free from the start and of high priority: first, by id.
    assert list(order[:50]) == sorted(f"p{n}" for n in range(0, 1000, 20))
