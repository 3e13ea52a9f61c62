"""What goes over the wire: the move the agent sends, the position it sees, the game's state."""

from __future__ import annotations

from corral import Action, Observation, State
from pydantic import Field


class ChessAction(Action):
    move: str = Field(
        min_length=1,
        max_length=16,
        description="The agent's move, in UCI (e2e4, e7e8q) or SAN (e4, Nf3, O-O, exd5, e8=Q).",
        examples=["e2e4"],
    )


class ChessObservation(Observation):
    fen: str = Field(description="The position in Forsyth-Edwards Notation, the agent to move unless the game is over.")
    board: str = Field(description="The board as text, rank 8 at the top; upper case is white, '.' an empty square.")
    color: str = Field(description="The side the agent plays: 'white' or 'black'.")
    legal_moves: list[str] = Field(description="The agent's legal moves in UCI, sorted; empty once the game is over.")
    legal_moves_san: list[str] = Field(description="The same moves in SAN, in the same order.")
    last_move: str | None = Field(default=None, description="The agent's last move in SAN.")
    opponent_move: str | None = Field(default=None, description="The opponent's last move in UCI.")
    opponent_move_san: str | None = Field(default=None, description="The opponent's last move in SAN.")
    check: bool = Field(default=False, description="Whether the agent's king is in check.")
    moves: list[str] = Field(default_factory=list, description="Every move of the game so far, in UCI.")
    moves_left: int = Field(description="Agent moves left before the game is cut off (truncated).")
    result: str = Field(default="*", description="'1-0', '0-1', '1/2-1/2', or '*' while the game goes on.")
    outcome: str | None = Field(
        default=None,
        description="How the game ended: checkmate, stalemate, insufficient_material, seventyfive_moves, "
        "fivefold_repetition, or move_limit.",
    )
    error: str | None = Field(
        default=None, description="Why the last move was not played (illegal or malformed), and what is legal."
    )


class ChessState(State):
    fen: str = ""
    color: str = "white"
    level: int = 0
    max_moves: int = 150
    illegal_move_penalty: float = 0.0
    result: str = "*"
    outcome: str | None = None
    moves: list[str] = Field(default_factory=list)
