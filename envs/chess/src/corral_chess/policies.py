"""Policies for `corral run --policy NAME` and `corral validate`: ``(observation, rng) -> action``.

``scripted`` beats the default opponent (a random mover) on every validation seed: it takes a mate in one
when there is one, never allows a draw it can avoid, keeps its pieces out of cheap captures, grabs material,
and once ahead corners the enemy king (fewer enemy moves, king to the edge, its own king close).
"""

from __future__ import annotations

from random import Random

import chess

from .models import ChessAction, ChessObservation
from .opponent import PIECE_VALUES, material

_MATE = 10_000.0
_DRAW = -5_000.0


def scripted(observation: ChessObservation, rng: Random) -> ChessAction:
    board = chess.Board()
    for uci in observation.moves:  # the whole game, so repetitions are visible
        board.push_uci(uci)
    me = board.turn
    scored: dict[float, list[chess.Move]] = {}
    for move in sorted(board.legal_moves, key=chess.Move.uci):
        board.push(move)
        scored.setdefault(_evaluate(board, me), []).append(move)
        board.pop()
    # Best first; a move that lets the opponent mate at once is skipped (checked lazily: it is costly).
    for score in sorted(scored, reverse=True):
        safe = [move for move in scored[score] if score >= _MATE or not _allows_mate(board, move)]
        if safe:
            return ChessAction(move=rng.choice(safe).uci())
    return ChessAction(move=rng.choice(scored[max(scored)]).uci())


def random(observation: ChessObservation, rng: Random) -> ChessAction:
    return ChessAction(move=rng.choice(observation.legal_moves))


def _evaluate(board: chess.Board, me: chess.Color) -> float:
    """The position after the agent's move, the opponent to move, from the agent's side."""
    if board.is_checkmate():
        return _MATE
    if board.is_stalemate() or board.is_insufficient_material() or board.is_repetition(3) or board.is_fifty_moves():
        return _DRAW
    them = not me
    score = float(material(board, me)) - _exposure(board, me)
    replies = board.legal_moves.count()
    ahead = material(board, me) >= 3
    if ahead:
        king = board.king(them)
        mine = board.king(me)
        assert king is not None
        assert mine is not None
        score -= 0.3 * replies
        score += 0.5 * _edge_distance(king) * -1 + 0.2 * (7 - chess.square_distance(king, mine))
        if board.is_repetition(2):
            score -= 2.0
    else:
        score -= 0.02 * replies
    return score


def _exposure(board: chess.Board, me: chess.Color) -> float:
    """The most the opponent can win with one capture: a piece left hanging or attacked by a cheaper one."""
    worst = 0.0
    them = not me
    for square, piece in board.piece_map().items():
        if piece.color != me or piece.piece_type == chess.KING:
            continue
        attackers = board.attackers(them, square)
        if not attackers:
            continue
        value = PIECE_VALUES[piece.piece_type]
        cheapest = min(PIECE_VALUES[board.piece_type_at(a) or chess.PAWN] or 100 for a in attackers)
        loss = value if not board.attackers(me, square) else value - cheapest
        worst = max(worst, float(loss))
    return worst


def _allows_mate(board: chess.Board, move: chess.Move) -> bool:
    """Whether the opponent has a mate in one after the agent plays ``move``."""
    board.push(move)
    try:
        for reply in board.legal_moves:
            if board.gives_check(reply):
                board.push(reply)
                mate = board.is_checkmate()
                board.pop()
                if mate:
                    return True
        return False
    finally:
        board.pop()


def _edge_distance(square: chess.Square) -> int:
    """How far ``square`` is from the nearest edge (0 on the edge, 3 in the centre)."""
    file, rank = chess.square_file(square), chess.square_rank(square)
    return min(file, 7 - file, rank, 7 - rank)
