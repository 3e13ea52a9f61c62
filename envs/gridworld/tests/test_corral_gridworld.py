"""gridworld's tests: layouts, conformance, reproducible seeds, a scripted policy that always reaches the goal,
traps, the step limit, bumps, bad input, and a real client session."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from corral.errors import InvalidAction
from corral.testing import InProcessClient, check_env, check_package, play_locally

from corral_gridworld import GridworldAction, GridworldEnvironment, GridworldObservation, generate, shortest_path
from corral_gridworld.policies import random as random_policy
from corral_gridworld.policies import scripted

ROOT = Path(__file__).resolve().parents[1]
OPTION_SETS: list[dict[str, object]] = [
    {}, {"size": 4}, {"size": 16, "wall_density": 0.4, "traps": 16}, {"size": 10, "max_steps": 12},
]


def play(seed: int, **options: object) -> tuple[float, list[dict[str, object]]]:
    return play_locally(GridworldEnvironment(), scripted, seed=seed, **options)


@pytest.mark.parametrize("options", OPTION_SETS)
def test_every_layout_has_a_goal_within_the_step_limit(options: dict[str, object]) -> None:
    for seed in range(100):
        env = GridworldEnvironment()
        env.reset(seed=seed, **options)
        s = env.state
        blocked = set(s.walls) | set(s.traps)
        path = shortest_path(s.start, s.goal, s.size, lambda cell, blocked=blocked: cell not in blocked)
        assert path is not None
        assert min(s.size // 2, s.max_steps) <= len(path) <= s.max_steps
        assert len({s.start, s.goal, *s.traps}) == len(s.traps) + 2
        assert not blocked & {s.start, s.goal}


def test_the_grid_is_drawn_as_text_rows() -> None:
    layout = generate(random.Random(0), 5, 0.3, 2, 25)
    rows = layout.rows(layout.start)
    assert len(rows) == 5
    assert all(len(row) == 5 and set(row) <= set("#.XGA") for row in rows)
    assert rows[layout.start[0]][layout.start[1]] == "A"
    assert rows[layout.goal[0]][layout.goal[1]] == "G"
    assert sum(row.count("X") for row in rows) == 2
    assert sum(row.count("#") for row in rows) == len(layout.walls)


def test_conformance() -> None:
    check_env(GridworldEnvironment, sample_action=GridworldAction(move="right"))


def test_the_package_validates() -> None:
    report = check_package(ROOT, runtime=None)
    assert report.ok, str(report)


def test_same_seed_same_episode() -> None:
    assert play(3) == play(3)
    assert play(3, size=12) == play(3, size=12)
    assert len({tuple(play(seed)[1][0]["grid"]) for seed in range(20)}) == 20


@pytest.mark.parametrize("options", OPTION_SETS)
def test_scripted_policy_always_reaches_the_goal(options: dict[str, object]) -> None:
    for seed in range(100):
        assert play(seed, **options)[0] == 1.0, seed


def test_a_step_cost_is_charged_for_every_move_but_the_last() -> None:
    total, trace = play(4, step_cost=0.01)
    moves = len(trace) - 1
    assert total == pytest.approx(1.0 - 0.01 * (moves - 1))


def test_a_trap_ends_the_episode_with_a_penalty() -> None:
    for seed in range(50):
        env = GridworldEnvironment()
        env.reset(seed=seed)
        s = env.state
        for trap in s.traps:
            others = set(s.walls) | set(s.traps) - {trap}
            path = shortest_path(s.start, trap, s.size, lambda cell, others=others: cell not in others)
            if path is not None and s.goal not in _cells(s.start, path):
                break
        else:
            continue
        for move in path[:-1]:
            assert not env.step(GridworldAction(move=move)).done
        result = env.step(GridworldAction(move=path[-1]))
        assert result.terminated
        assert not result.truncated
        assert result.reward == -1.0
        assert env.state.outcome == "trap"
        return
    pytest.fail("no seed in 0-49 has a reachable trap")


def _cells(start: tuple[int, int], path: list[str]) -> list[tuple[int, int]]:
    offsets = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
    cells, (r, c) = [], start
    for move in path:
        r, c = r + offsets[move][0], c + offsets[move][1]
        cells.append((r, c))
    return cells


def test_truncated_at_the_step_limit() -> None:
    env = GridworldEnvironment()
    env.reset(seed=2, max_steps=6)
    for _ in range(5):
        result = env.step(GridworldAction(move="stay"))
        assert not result.done
    result = env.step(GridworldAction(move="stay"))
    assert result.truncated
    assert not result.terminated
    assert result.reward == 0.0
    assert result.observation.steps_left == 0
    assert env.state.outcome == "step limit"


def test_bumping_into_the_edge_or_a_wall_stays_put() -> None:
    env = GridworldEnvironment()
    for seed in range(50):
        env.reset(seed=seed, wall_density=0.4)
        s = env.state
        row, col = s.start
        for move, cell in (("up", (row - 1, col)), ("down", (row + 1, col)), ("left", (row, col - 1)),
                           ("right", (row, col + 1))):
            outside = not (0 <= cell[0] < s.size and 0 <= cell[1] < s.size)
            if outside or cell in s.walls:
                result = env.step(GridworldAction(move=move))
                assert result.observation.position == s.start
                assert "stay put" in result.observation.message
                assert not result.done
                return
    pytest.fail("no seed in 0-49 starts beside a wall or an edge")


@pytest.mark.parametrize(("options", "why"), [
    ({"size": 3}, "size"), ({"size": 17}, "size"), ({"traps": -1}, "traps"), ({"wall_density": 0.9}, "wall_density"),
    ({"step_cost": "0.1"}, "step_cost"), ({"max_steps": 0}, "max_steps"), ({"walls": 3}, "unknown reset option"),
])
def test_bad_reset_options_are_refused(options: dict[str, object], why: str) -> None:
    with pytest.raises(InvalidAction, match=why):
        GridworldEnvironment().reset(seed=0, **options)


def test_random_policy_plays_whole_episodes() -> None:
    outcomes = set()
    for seed in range(30):
        env = GridworldEnvironment()
        result = env.reset(seed=seed, traps=6)
        rng = random.Random(seed)
        while not result.done:
            result = env.step(random_policy(result.observation, rng))
        outcomes.add(env.state.outcome)
    assert outcomes <= {"goal", "trap", "step limit"}
    assert len(outcomes) >= 2


def test_a_session_through_the_server() -> None:
    with InProcessClient(GridworldEnvironment, observation_type=GridworldObservation) as client:
        result = client.reset(seed=1, size=5)
        assert len(result.observation.grid) == 5
        with pytest.raises(InvalidAction):
            client.step({"move": "north"})
        assert client.state().step_count == 0
        while not result.done:
            result = client.step(scripted(result.observation, random.Random(0)))
        assert result.terminated
        assert result.reward == 1.0
        assert client.state().outcome == "goal"
