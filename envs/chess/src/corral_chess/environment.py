"""The chess environment: the agent plays one side of a game against a seeded built-in opponent."""

from __future__ import annotations

import random
import uuid
from typing import Any

import chess
from corral import EnvInfo, Environment, StepResult

from .models import ChessAction, ChessObservation, ChessState
from .opponent import LEVELS, Opponent

COLORS = ("white", "black", "random")
#: How many legal moves an error message names before it says how many there are in all.
_SHOWN = 12


class ChessEnvironment(Environment[ChessAction, ChessObservation, ChessState]):
    """One game of chess from the standard position; the agent moves, then the opponent replies.

    Reward 1.0 for a win, 0.0 for a draw, -1.0 for a loss (``terminated``); ``truncated`` with 0.0 when the
    agent has taken ``max_moves`` steps and the game goes on. An illegal or malformed move is not played:
    the observation's ``error`` says why and lists legal moves, the opponent does not reply, and the step
    costs one of the ``max_moves`` steps and ``illegal_move_penalty`` reward (default 0), nothing else.

    Reset options: ``color`` (``white``, ``black`` or ``random``: the seed picks; default ``white``),
    ``level`` (the opponent, 0 random, 1 greedy, 2 one reply ahead; default 0), ``max_moves`` (default 150),
    ``illegal_move_penalty`` (default 0.0).
    The seed drives the opponent (and ``random`` colour), so the same seed and moves replay the same game.
    """

    action_type = ChessAction
    observation_type = ChessObservation
    state_type = ChessState
    info = EnvInfo(
        name="chess",
        version="0.1.0",
        description="Play chess against a seeded built-in opponent; moves in UCI or SAN.",
    )

    def __init__(self) -> None:
        self._board = chess.Board()
        self._opponent = Opponent(0, random.Random())
        self._color: chess.Color = chess.WHITE
        self._state = ChessState(fen=self._board.fen())
        self._opponent_move: chess.Move | None = None
        self._opponent_san: str | None = None
        self._last_san: str | None = None
        self._error: str | None = None

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> StepResult[ChessObservation]:
        unknown = set(options) - {"color", "level", "max_moves", "illegal_move_penalty"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; "
                             "expected color, level, max_moves, illegal_move_penalty")
        color = options.get("color", "white")
        if color not in COLORS:
            raise ValueError(f"reset option 'color' must be one of {', '.join(COLORS)}, got {color!r}")
        level = options.get("level", 0)
        if level not in LEVELS:
            raise ValueError(f"reset option 'level' must be one of {', '.join(map(str, LEVELS))}, got {level!r}")
        max_moves = options.get("max_moves", 150)
        if not isinstance(max_moves, int) or max_moves < 1:
            raise ValueError(f"reset option 'max_moves' must be a whole number of at least 1, got {max_moves!r}")
        penalty = options.get("illegal_move_penalty", 0.0)
        if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or penalty < 0:
            raise ValueError(f"reset option 'illegal_move_penalty' must be a number of at least 0, got {penalty!r}")
        rng = random.Random(seed)
        if color == "random":
            color = rng.choice(("white", "black"))
        self._board = chess.Board()
        self._opponent = Opponent(level, rng)
        self._color = chess.WHITE if color == "white" else chess.BLACK
        self._opponent_move = self._opponent_san = self._last_san = self._error = None
        self._state = ChessState(
            episode_id=episode_id or str(uuid.uuid4()), color=color, level=level, max_moves=max_moves,
            illegal_move_penalty=float(penalty),
        )
        if self._color == chess.BLACK:
            self._reply()
        self._sync()
        return StepResult(observation=self._observe())

    def step(self, action: ChessAction) -> StepResult[ChessObservation]:
        state = self._state
        state.step_count += 1
        move, self._error = self._parse(action.move.strip())
        reward, info = 0.0, {}
        if move is None:
            reward, info = -state.illegal_move_penalty or 0.0, {"illegal_move": True}
        else:
            self._opponent_move = self._opponent_san = None
            self._last_san = self._board.san(move)
            self._board.push(move)
            if self._board.outcome() is None:
                self._reply()
            self._sync()
        terminated = state.result != "*"
        if terminated:
            winner = {"1-0": chess.WHITE, "0-1": chess.BLACK}.get(state.result)
            reward = 0.0 if winner is None else (1.0 if winner == self._color else -1.0)
        truncated = not terminated and state.step_count >= state.max_moves
        if truncated:
            state.outcome = "move_limit"
        return StepResult(observation=self._observe(), reward=reward, terminated=terminated, truncated=truncated,
                          info=info)

    @property
    def state(self) -> ChessState:
        return self._state

    def _reply(self) -> None:
        move = self._opponent.choose(self._board)
        self._opponent_san = self._board.san(move)
        self._opponent_move = move
        self._board.push(move)

    def _sync(self) -> None:
        state = self._state
        state.fen = self._board.fen()
        state.moves = [move.uci() for move in self._board.move_stack]
        outcome = self._board.outcome()
        if outcome is not None:
            state.result = outcome.result()
            state.outcome = outcome.termination.name.lower()

    def _parse(self, text: str) -> tuple[chess.Move | None, str | None]:
        """The legal move ``text`` names (UCI or SAN), or None and a message that says what is legal."""
        board = self._board
        try:
            move = chess.Move.from_uci(text)
        except ValueError:
            move = None
        if move is not None:
            if move in board.legal_moves:
                return move, None
            # A pawn reaching the last rank needs its piece: e7e8 means nothing, e7e8q is legal.
            if chess.Move(move.from_square, move.to_square, chess.QUEEN) in board.legal_moves:
                problem = f"{text!r} promotes a pawn: add the piece, e.g. {text}q"
            else:
                problem = f"{text!r} is not a legal move here"
        else:
            try:
                return board.parse_san(text), None
            except chess.IllegalMoveError:
                problem = f"{text!r} is not a legal move here"
            except chess.AmbiguousMoveError:
                problem = f"{text!r} is ambiguous: name the piece's file or rank (Nbd2) or use UCI"
            except chess.InvalidMoveError:
                problem = f"{text!r} is neither UCI (e2e4, e7e8q) nor SAN (e4, Nf3, O-O, e8=Q)"
        if board.is_check():
            problem += " (your king is in check)"
        legal = sorted(m.uci() for m in board.legal_moves)
        shown = ", ".join(legal[:_SHOWN]) + (f", ... ({len(legal)} in all)" if len(legal) > _SHOWN else "")
        return None, f"{problem}; legal moves: {shown}. The move was not played; send another."

    def _observe(self) -> ChessObservation:
        board, state = self._board, self._state
        over = state.result != "*" or state.step_count >= state.max_moves
        legal = [] if over else sorted(board.legal_moves, key=chess.Move.uci)
        return ChessObservation(
            fen=state.fen,
            board=render(board),
            color=state.color,
            legal_moves=[move.uci() for move in legal],
            legal_moves_san=[board.san(move) for move in legal],
            last_move=self._last_san,
            opponent_move=self._opponent_move.uci() if self._opponent_move else None,
            opponent_move_san=self._opponent_san,
            check=not over and board.is_check(),
            moves=list(state.moves),
            moves_left=state.max_moves - state.step_count,
            result=state.result,
            outcome=state.outcome,
            error=self._error,
        )


def render(board: chess.Board) -> str:
    """The board with rank and file labels, rank 8 at the top."""
    rows = [f"{rank} {line}" for rank, line in zip(range(8, 0, -1), str(board).splitlines(), strict=True)]
    return "\n".join([*rows, "  a b c d e f g h"])
