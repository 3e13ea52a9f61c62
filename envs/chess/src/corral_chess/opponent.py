"""The built-in opponent: seeded, and weak on purpose at the default level.

``level`` 0 moves at random; 1 is greedy (a mate in one, else the capture that wins the most material at
once); 2 looks one reply ahead (the move whose worst reply leaves it the most material). Ties are broken by
the episode's seeded random generator, so the same seed and the same agent moves replay the same game.
"""

from __future__ import annotations

import random

import chess

LEVELS = (0, 1, 2)

PIECE_VALUES = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9, chess.KING: 0}

_MATE = 1000


def material(board: chess.Board, color: chess.Color) -> int:
    """The material balance from ``color``'s side (pawn 1, knight and bishop 3, rook 5, queen 9)."""
    total = 0
    for piece_type, value in PIECE_VALUES.items():
        total += value * (len(board.pieces(piece_type, color)) - len(board.pieces(piece_type, not color)))
    return total


class Opponent:
    """Chooses the side to move's move in a position."""

    def __init__(self, level: int, rng: random.Random) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        self.level = level
        self.rng = rng

    def choose(self, board: chess.Board) -> chess.Move:
        moves = sorted(board.legal_moves, key=chess.Move.uci)
        if self.level == 0:
            return self.rng.choice(moves)
        me = board.turn
        scored = [(self._score(board, move, me), move) for move in moves]
        best = max(score for score, _ in scored)
        return self.rng.choice([move for score, move in scored if score == best])

    def _score(self, board: chess.Board, move: chess.Move, me: chess.Color) -> int:
        board.push(move)
        try:
            if board.is_checkmate():
                return _MATE
            if self.level == 1 or board.is_game_over():
                return material(board, me)
            worst = _MATE
            for reply in board.legal_moves:
                board.push(reply)
                worst = min(worst, -_MATE if board.is_checkmate() else material(board, me))
                board.pop()
            return worst
        finally:
            board.pop()
