"""chess's tests: conformance, reproducible games, a scripted policy that mates the default opponent, wins,
losses, draws and truncation, illegal and malformed moves, reset options, and a real client session."""

from __future__ import annotations

import random
from pathlib import Path

import chess
import pytest
from corral.package import load_package
from corral.testing import InProcessClient, check_env, check_package, play_locally

from corral_chess import ChessAction, ChessEnvironment, ChessObservation
from corral_chess.opponent import Opponent, material
from corral_chess.policies import scripted

ROOT = Path(__file__).resolve().parents[1]


def play(seed: int | None, **options: object) -> tuple[float, list[dict[str, object]]]:
    return play_locally(ChessEnvironment(), scripted, seed=seed, **options)


def first_legal(seed: int, **options: object) -> tuple[float, ChessObservation, ChessEnvironment]:
    """The agent always plays its alphabetically first legal move: a sure way to lose to a greedy opponent."""
    env = ChessEnvironment()
    result = env.reset(seed=seed, **options)
    while not result.done:
        result = env.step(ChessAction(move=result.observation.legal_moves[0]))
    return result.reward or 0.0, result.observation, env


def test_conformance() -> None:
    check_env(ChessEnvironment, sample_action=ChessAction(move="e2e4"))
    check_env(ChessEnvironment, sample_action=ChessAction(move="e5"), reset_options={"color": "black", "level": 2})


def test_the_package_validates() -> None:
    report = check_package(ROOT, runtime=None)
    assert report.ok, str(report)


def test_same_seed_same_game() -> None:
    assert play(3) == play(3)
    assert play(3, color="black", level=1) == play(3, color="black", level=1)
    assert play(3)[1] != play(4)[1]


@pytest.mark.parametrize("color", ["white", "black"])
def test_scripted_policy_mates_the_default_opponent(color: str) -> None:
    seeds = set(load_package(ROOT).manifest.validate_.seeds) | set(range(10))
    for seed in sorted(seeds):
        total, trace = play(seed, color=color)
        assert total == 1.0, f"seed {seed}: {trace[-1]['outcome']} after {len(trace) - 1} moves"
        assert trace[-1]["outcome"] == "checkmate"
        assert trace[-1]["result"] == ("1-0" if color == "white" else "0-1")
        assert len(trace) - 1 <= 150


def test_a_loss_scores_minus_one_and_a_draw_zero() -> None:
    reward, observation, env = first_legal(24, level=1)
    assert (reward, observation.result, observation.outcome) == (-1.0, "0-1", "checkmate")
    assert observation.legal_moves == []
    assert env.state.result == "0-1"
    reward, observation, _ = first_legal(38, level=1)
    assert (reward, observation.result, observation.outcome) == (0.0, "1/2-1/2", "stalemate")


def test_truncated_at_the_move_limit() -> None:
    env = ChessEnvironment()
    env.reset(seed=0, max_moves=2)
    assert not env.step(ChessAction(move="Nf3")).done
    result = env.step(ChessAction(move="g1f3"))  # illegal now: it still uses up a step
    assert result.truncated
    assert not result.terminated
    assert result.reward == 0.0
    assert result.observation.outcome == "move_limit"
    assert result.observation.moves_left == 0
    assert result.observation.legal_moves == []
    assert result.observation.result == "*"


def test_moves_in_uci_and_san() -> None:
    env = ChessEnvironment()
    result = env.reset(seed=5)
    assert len(result.observation.legal_moves) == 20
    assert "Nf3" in result.observation.legal_moves_san
    assert result.observation.opponent_move is None
    assert result.observation.color == "white"
    result = env.step(ChessAction(move="e4"))
    assert result.observation.last_move == "e4"
    assert result.observation.moves[0] == "e2e4"
    assert result.observation.opponent_move == result.observation.moves[1]
    board = chess.Board(result.observation.fen)
    assert board.turn == chess.WHITE
    assert len(result.observation.moves) == 2
    assert result.observation.board.splitlines()[-1] == "  a b c d e f g h"
    san, uci = result.observation.legal_moves_san[0], result.observation.legal_moves[0]
    assert board.parse_san(san).uci() == uci
    assert env.step(ChessAction(move=" Nf3 ")).observation.last_move == "Nf3"


def test_illegal_and_malformed_moves_are_not_played() -> None:
    env = ChessEnvironment()
    first = env.reset(seed=1, illegal_move_penalty=0.1).observation
    for move, why in [("e2e5", "is not a legal move here"), ("Ke2", "is not a legal move here"),
                      ("castle!", "is neither UCI (e2e4, e7e8q) nor SAN")]:
        result = env.step(ChessAction(move=move))
        error = result.observation.error
        assert error is not None
        assert f"{move!r} {why}" in error, error
        assert "legal moves: a2a3, a2a4," in error
        assert "(20 in all)" in error
        assert result.observation.fen == first.fen
        assert result.observation.moves == []
        assert result.reward == -0.1
        assert result.info == {"illegal_move": True}
        assert not result.done
    assert env.state.step_count == 3
    assert result.observation.moves_left == 147
    result = env.step(ChessAction(move="d4"))
    assert result.observation.error is None
    assert result.reward == 0.0
    assert len(result.observation.moves) == 2


def test_an_error_in_check_says_so() -> None:
    env = ChessEnvironment()
    result = env.reset(seed=0, level=1)
    rng = random.Random(0)
    while not result.observation.check:  # random moves against a greedy opponent: a check comes soon
        result = env.step(ChessAction(move=rng.choice(result.observation.legal_moves)))
        assert not result.done
    legal = set(result.observation.legal_moves)
    board = chess.Board(result.observation.fen)
    escaping = next(m.uci() for m in board.pseudo_legal_moves if m.uci() not in legal)
    error = env.step(ChessAction(move=escaping)).observation.error
    assert error is not None
    assert "is not a legal move here (your king is in check)" in error


def test_reset_options() -> None:
    env = ChessEnvironment()
    colors = {env.reset(seed=seed, color="random").observation.color for seed in range(12)}
    assert colors == {"white", "black"}
    assert env.reset(seed=7, color="random").observation.color == env.reset(seed=7, color="random").observation.color
    black = env.reset(seed=2, color="black").observation
    assert black.opponent_move is not None
    assert len(black.moves) == 1
    assert chess.Board(black.fen).turn == chess.BLACK
    for options, message in [({"color": "green"}, "'color' must be one of"), ({"level": 5}, "'level' must be one"),
                             ({"max_moves": 0}, "'max_moves' must be"), ({"depth": 2}, "unknown reset options"),
                             ({"illegal_move_penalty": -1}, "'illegal_move_penalty' must be")]:
        with pytest.raises(ValueError, match=message):
            env.reset(seed=0, **options)


def test_opponent_levels() -> None:
    # After 1. e4 d5 the greedy opponent (white to move here) always takes the pawn on d5.
    board = chess.Board()
    for uci in ("e2e4", "d7d5"):
        board.push_uci(uci)
    assert Opponent(1, random.Random(0)).choose(board).uci() == "e4d5"
    # Greedy grabs a pawn with the queen (Qxh7 or Qxd7+); level 2 sees the queen lost to the recapture.
    board = chess.Board("rnbqkbnr/pppppppp/8/8/8/3Q4/PPPPPPPP/RNB1KBNR w KQkq - 0 1")
    grabs = {"d3h7", "d3d7"}
    assert {Opponent(1, random.Random(seed)).choose(board).uci() for seed in range(10)} == grabs
    assert all(Opponent(2, random.Random(seed)).choose(board).uci() not in grabs for seed in range(10))
    assert material(board, chess.WHITE) == 0
    with pytest.raises(ValueError, match="level must be one of"):
        Opponent(3, random.Random(0))


def test_a_session_through_the_server() -> None:
    with InProcessClient(ChessEnvironment, observation_type=ChessObservation) as client:
        result = client.reset(seed=1, color="black")
        assert result.observation.color == "black"
        assert result.observation.opponent_move is not None
        result = client.step(ChessAction(move="e5"))
        assert result.observation.last_move == "e5"
        assert result.reward == 0.0
        result = client.step({"move": "e5"})
        assert result.observation.error is not None
        assert "not a legal move" in result.observation.error
        assert result.info == {"illegal_move": True}
        assert client.state().step_count == 2

