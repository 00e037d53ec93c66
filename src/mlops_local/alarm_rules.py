"""The expressions of CloudWatch alarms local mode evaluates: metric math on one value per query per
period, and composite alarm rules on alarm states. Anything else is refused by name."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")


class NotEmulatedError(ValueError):
    """An alarm uses something local mode cannot evaluate (its state stays INSUFFICIENT_DATA)."""


_TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|&&|\|\||[-+*/^(),<>!]))"
)
Value = float | None
Expression = Callable[[dict[str, Value]], Value]


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        found = _TOKEN.match(text, position)
        if not found or found.end() == position:
            raise NotEmulatedError(f"cannot read {text[position:]!r} in {text!r}")
        tokens.append(next(group for group in found.groups() if group is not None))
        position = found.end()
    return tokens


def _arith(op: str, a: Value, b: Value) -> Value:
    if a is None or b is None:
        return None
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "^":
        return a**b
    return None if b == 0 else a / b  # a division by zero has no value


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


class _MathParser:
    """CloudWatch metric math on one value per query per period (a missing value propagates)."""

    FUNCTIONS = {"IF", "FILL", "ABS"}

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0
        self.references: set[str] = set()

    def parse(self) -> Expression:
        expression = self._or()
        if self.index != len(self.tokens):
            raise NotEmulatedError(f"unexpected {self.tokens[self.index]!r} in {self.text!r}")
        return expression

    def _peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if token is None or (expected is not None and token != expected):
            raise NotEmulatedError(f"expected {expected or 'more'} in {self.text!r}")
        self.index += 1
        return token

    def _binary(
        self, operators: set[str], operand: Callable[[], Expression], combine: Callable[[str, Value, Value], Value]
    ) -> Expression:
        left = operand()
        while self._peek() in operators:
            op = self._take()
            right = operand()
            left = (lambda a, b, o: lambda env: combine(o, a(env), b(env)))(left, right, op)
        return left

    def _or(self) -> Expression:
        return self._binary({"OR", "||"}, self._and, _logical)

    def _and(self) -> Expression:
        return self._binary({"AND", "&&"}, self._not, _logical)

    def _not(self) -> Expression:
        if self._peek() in {"NOT", "!"}:
            self._take()
            inner = self._not()
            return lambda env: None if (v := inner(env)) is None else float(v == 0)
        return self._comparison()

    def _comparison(self) -> Expression:
        left = self._sum()
        if self._peek() in _COMPARISONS:
            op = self._take()
            right = self._sum()
            compare = _COMPARISONS[op]
            return lambda env: None if (a := left(env)) is None or (b := right(env)) is None else float(compare(a, b))
        return left

    def _sum(self) -> Expression:
        return self._binary({"+", "-"}, self._product, _arith)

    def _product(self) -> Expression:
        return self._binary({"*", "/", "^"}, self._unary, _arith)

    def _unary(self) -> Expression:
        if self._peek() == "-":
            self._take()
            inner = self._unary()
            return lambda env: None if (v := inner(env)) is None else -v
        return self._atom()

    def _atom(self) -> Expression:
        word = self._take()
        if word == "(":
            inner = self._or()
            self._take(")")
            return inner
        if word[0].isdigit():
            number = float(word)
            return lambda env: number
        if not (word[0].isalpha() or word[0] == "_"):
            raise NotEmulatedError(f"unexpected {word!r} in {self.text!r}")
        if self._peek() == "(":
            return self._call(word)
        self.references.add(word)
        return lambda env: env.get(word)

    def _call(self, name: str) -> Expression:
        if name not in self.FUNCTIONS:
            raise NotEmulatedError(f"metric math function {name} is not emulated")
        self._take("(")
        args = [self._or()]
        while self._peek() == ",":
            self._take()
            args.append(self._or())
        self._take(")")
        if name == "IF" and len(args) in (2, 3):
            condition, then = args[0], args[1]
            otherwise = args[2] if len(args) == 3 else (lambda env: None)

            def if_(env: dict[str, Value]) -> Value:
                test = condition(env)
                if test is None:
                    return None
                return then(env) if test != 0 else otherwise(env)

            return if_
        if name == "FILL" and len(args) == 2:
            series, filler = args
            return lambda env: v if (v := series(env)) is not None else filler(env)
        if name == "ABS" and len(args) == 1:
            inner = args[0]
            return lambda env: None if (v := inner(env)) is None else abs(v)
        raise NotEmulatedError(f"{name} with {len(args)} arguments is not emulated")


def _logical(op: str, a: Value, b: Value) -> Value:
    if a is None or b is None:
        return None
    return float((a != 0 and b != 0) if op in {"AND", "&&"} else (a != 0 or b != 0))


@lru_cache(maxsize=256)
def parse_math(text: str) -> tuple[Expression, frozenset[str]]:
    """The expression as a function of the query values, and the query ids it reads."""
    parser = _MathParser(text)
    return parser.parse(), frozenset(parser.references)


_RULE_TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"|([^\s()"]+))')


def parse_rule(text: str) -> tuple[Callable[[dict[str, str]], bool], list[str]]:
    """An AlarmRule as a predicate on alarm states (by name or ARN), and the alarms it names."""
    tokens: list[tuple[str, str]] = []  # (kind, text): kind in ( ) name word
    position = 0
    while position < len(text.rstrip()):
        found = _RULE_TOKEN.match(text, position)
        if not found or found.end() == position:
            raise NotEmulatedError(f"cannot read the alarm rule at {text[position:]!r}")
        opened, closed, quoted, word = found.groups()
        tokens.append(
            ("(", "(")
            if opened
            else (")", ")")
            if closed
            else ("name", quoted)
            if quoted is not None
            else ("word", word)
        )
        position = found.end()
    names: list[str] = []
    index = 0

    def peek() -> tuple[str, str] | None:
        return tokens[index] if index < len(tokens) else None

    def take(kind: str) -> str:
        nonlocal index
        token = peek()
        if token is None or token[0] != kind:
            raise NotEmulatedError(f"alarm rule {text!r}: expected {kind}")
        index += 1
        return token[1]

    Predicate = Callable[[dict[str, str]], bool]

    def expression() -> Predicate:
        left = conjunction()
        while peek() == ("word", "OR"):
            take("word")
            right = conjunction()
            left = (lambda a, b: lambda states: a(states) or b(states))(left, right)
        return left

    def conjunction() -> Predicate:
        left = negation()
        while peek() == ("word", "AND"):
            take("word")
            right = negation()
            left = (lambda a, b: lambda states: a(states) and b(states))(left, right)
        return left

    def negation() -> Predicate:
        if peek() == ("word", "NOT"):
            take("word")
            inner = negation()
            return lambda states: not inner(states)
        return atom()

    def atom() -> Predicate:
        token = peek()
        if token == ("(", "("):
            take("(")
            inner = expression()
            take(")")
            return inner
        word = take("word")
        if word in ("TRUE", "FALSE"):
            constant = word == "TRUE"
            return lambda states: constant
        if word not in STATES:
            raise NotEmulatedError(f"alarm rule {text!r}: {word} is not emulated")
        take("(")
        following = peek()
        child = take("name") if following and following[0] == "name" else take("word")
        take(")")
        names.append(child)
        return lambda states: states.get(child) == word

    predicate = expression()
    if index != len(tokens):
        raise NotEmulatedError(f"alarm rule {text!r}: unexpected {tokens[index][1]!r}")
    return predicate, names
