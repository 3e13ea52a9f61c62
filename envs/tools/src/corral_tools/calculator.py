"""A safe arithmetic evaluator: a tokenizer and a recursive-descent parser, never ``eval``.

Grammar (``^`` and ``**`` both raise to a power, right-associative, binding tighter than a unary minus on
their left as in Python: ``-2**2`` is -4)::

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/" | "//" | "%") unary)*
    unary := ("+" | "-") unary | power
    power := atom (("**" | "^") unary)?
    atom  := NUMBER | CONSTANT | FUNCTION "(" expr ("," expr)* ")" | "(" expr ")"

Integers stay exact; ``/`` gives an integer when the division is exact. Inputs and results are bounded so
that no expression can tie up the server (length, nesting, exponent and result size).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

Number = int | float

MAX_LENGTH = 500
MAX_DEPTH = 40
#: The largest integer result, in bits (about 1,200 decimal digits).
MAX_BITS = 4096

CONSTANTS: dict[str, Number] = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalculatorError(ValueError):
    """The expression is malformed, or its value cannot be computed (division by zero, too large, ...)."""


def _log(x: Number, base: Number = math.e) -> Number:
    return math.log(x, base)


def _round(x: Number, digits: int = 0) -> Number:
    if not isinstance(digits, int):
        raise CalculatorError("round(x, digits): digits must be a whole number")
    return round(x, digits) if digits else round(x)


FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    # name: (function, fewest arguments, most arguments; -1 for any number)
    "sqrt": (math.sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "min": (min, 1, -1),
    "max": (max, 1, -1),
    "log": (_log, 1, 2),
    "exp": (math.exp, 1, 1),
}

_TOKEN = re.compile(r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
                    r"|(?P<op>\*\*|//|[-+*/%^(),]))")


def evaluate(expression: str) -> Number:
    """The value of ``expression``; :class:`CalculatorError` says what is wrong and where."""
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"the expression is {len(expression)} characters long; the limit is {MAX_LENGTH}")
    parser = _Parser(_tokenize(expression))
    value = parser.expr(0)
    if parser.peek() is not None:
        raise CalculatorError(f"unexpected {parser.peek()!r} at position {parser.position()}")
    return tidy(value)


def tidy(value: Number) -> Number:
    """A float with an integral value becomes an int; other floats keep 12 significant digits."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise CalculatorError("the result is not a finite number")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return float(f"{value:.12g}")
    return value


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            bad = text[pos:].lstrip()[:1]
            raise CalculatorError(f"unexpected character {bad!r} at position {len(text) - len(text[pos:].lstrip())}; "
                                  "use numbers, + - * / // % ** ^, parentheses, and "
                                  f"{', '.join(sorted(FUNCTIONS))}, {', '.join(sorted(CONSTANTS))}")
        kind = match.lastgroup or "op"
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    if not tokens:
        raise CalculatorError("the expression is empty")
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def position(self) -> int:
        return self.tokens[self.index][2] if self.index < len(self.tokens) else -1

    def take(self) -> tuple[str, str, int]:
        if self.index >= len(self.tokens):
            raise CalculatorError("the expression ends too early")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        if self.peek() != text:
            found = "the end" if self.peek() is None else repr(self.peek())
            raise CalculatorError(f"expected {text!r} but found {found}")
        self.index += 1

    def expr(self, depth: int) -> Number:
        if depth > MAX_DEPTH:
            raise CalculatorError(f"the expression nests deeper than {MAX_DEPTH} levels")
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            right = self.term(depth)
            value = value + right if op == "+" else value - right
        return value

    def term(self, depth: int) -> Number:
        value = self.unary(depth)
        while self.peek() in ("*", "/", "//", "%"):
            op = self.take()[1]
            right = self.unary(depth)
            value = _binary(op, value, right)
        return value

    def unary(self, depth: int) -> Number:
        if self.peek() in ("+", "-"):
            op = self.take()[1]
            value = self.unary(depth + 1)
            return -value if op == "-" else value
        return self.power(depth)

    def power(self, depth: int) -> Number:
        base = self.atom(depth)
        if self.peek() in ("**", "^"):
            self.take()
            return _power(base, self.unary(depth + 1))
        return base

    def atom(self, depth: int) -> Number:
        kind, text, pos = self.take()
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "name":
            if text in CONSTANTS:
                return CONSTANTS[text]
            if text not in FUNCTIONS:
                raise CalculatorError(f"unknown name {text!r} at position {pos}; functions: "
                                      f"{', '.join(sorted(FUNCTIONS))}; constants: {', '.join(sorted(CONSTANTS))}")
            self.expect("(")
            args = [self.expr(depth + 1)]
            while self.peek() == ",":
                self.take()
                args.append(self.expr(depth + 1))
            self.expect(")")
            return _call(text, args)
        if text == "(":
            value = self.expr(depth + 1)
            self.expect(")")
            return value
        raise CalculatorError(f"unexpected {text!r} at position {pos}")


def _binary(op: str, left: Number, right: Number) -> Number:
    if op == "*":
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_BITS:
            raise CalculatorError(f"the product is too large (results are limited to {MAX_BITS} bits)")
        return left * right
    if right == 0:
        raise CalculatorError("division by zero")
    if op == "/":
        if isinstance(left, int) and isinstance(right, int) and left % right == 0:
            return left // right
        return left / right
    return left // right if op == "//" else left % right


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        if abs(base) > 1 and base.bit_length() * exponent > MAX_BITS:
            raise CalculatorError(f"{base} ** {exponent} is too large (results are limited to {MAX_BITS} bits)")
        return int(base**exponent)
    if base == 0 and exponent < 0:
        raise CalculatorError("zero cannot be raised to a negative power")
    try:
        value: Any = float(base) ** float(exponent)  # a negative base and a fractional exponent give a complex
    except OverflowError as exc:
        raise CalculatorError(f"{base} ** {exponent} is too large") from exc
    if isinstance(value, complex):
        raise CalculatorError(f"({base}) ** {exponent} is not a real number")
    return float(value)


def _call(name: str, args: list[Number]) -> Number:
    fn, fewest, most = FUNCTIONS[name]
    if len(args) < fewest or (most >= 0 and len(args) > most):
        want = str(fewest) if fewest == most else f"{fewest} to {most}" if most >= 0 else f"at least {fewest}"
        raise CalculatorError(f"{name}() takes {want} argument{'s' if want != '1' else ''}, got {len(args)}")
    try:
        value = fn(*args)
    except (ValueError, OverflowError) as exc:
        raise CalculatorError(f"{name}({', '.join(map(str, args))}) cannot be computed: {exc}") from exc
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise CalculatorError(f"the result of {name}() is too large")
    return value
