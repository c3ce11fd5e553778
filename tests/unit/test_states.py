"""The transition table itself: every state is reachable and every path can end."""

from __future__ import annotations

from collections import deque

from workflows.states import (
    RESUME_STATE_OF_STEP,
    TERMINAL_STATES,
    TRANSITIONS,
    Action,
    ErrandState,
)


def _successors() -> dict[ErrandState, set[ErrandState]]:
    graph: dict[ErrandState, set[ErrandState]] = {s: set() for s in ErrandState}
    for t in TRANSITIONS:
        targets = set(RESUME_STATE_OF_STEP.values()) if t.action is Action.RETRY else {t.target}
        graph[t.source] |= targets
    return graph


def _reachable(start: ErrandState, graph: dict[ErrandState, set[ErrandState]]) -> set:
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in graph[queue.popleft()] - seen:
            seen.add(nxt)
            queue.append(nxt)
    return seen


def test_every_state_is_reachable_from_draft() -> None:
    assert _reachable(ErrandState.DRAFT, _successors()) == set(ErrandState)


def test_every_state_can_reach_an_end() -> None:
    graph = _successors()
    for state in ErrandState:
        assert _reachable(state, graph) & TERMINAL_STATES, state


def test_terminal_states_have_no_way_out() -> None:
    assert not [t for t in TRANSITIONS if t.source in TERMINAL_STATES]


def test_each_state_and_action_pair_is_listed_once() -> None:
    pairs = [(t.source, t.action) for t in TRANSITIONS]
    assert len(pairs) == len(set(pairs))


def test_every_state_tells_the_submitter_something() -> None:
    """A new state cannot leave Mina ärenden without words for it."""
    from app.registrations.status import _STATUS

    assert set(_STATUS) == set(ErrandState)
