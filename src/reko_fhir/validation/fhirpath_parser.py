"""A recursive-descent parser for the FHIRPath the core and reko invariants use.

Gives a tree of tuples for fhirpath_compiler: ``("lit", items)``, ``("var", "$this")``,
``("op", operator, left, right)``, ``("path", source, step)`` with a step
``("member", name)`` or ``("call", name, arguments)``. Anything else (type operators' right
sides, indexers, polarity, date literals, decimals, environment variables other than
%resource and %rootResource) raises :class:`Unsupported`: the expression is then not compiled.
https://hl7.org/fhirpath/N1/#grammar, https://hl7.org/fhirpath/N1/#operator-precedence
"""

from __future__ import annotations

import re
from typing import Any


class Unsupported(Exception):  # noqa: N818
    """The expression uses FHIRPath this compiler does not have: it is not compiled."""


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+(?:\.\d+)?)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<bq>`[^`]*`)|(?P<var>[%$][A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|!=|!~|[-+*/&|=~<>(),.\[\]{}]))"
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}


def _tokens(text: str) -> list[tuple[str, str]]:
    found, at = [], 0
    text = text.strip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise Unsupported(f"cannot read at {at}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        at = match.end()
        while at < len(text) and text[at].isspace():
            at += 1
    return found


class _Parser:
    """FHIRPath expression grammar, lowest precedence first (https://hl7.org/fhirpath/N1/#grammar)."""

    _LEVELS: tuple[frozenset[str], ...] = (
        frozenset({"implies"}),
        frozenset({"or", "xor"}),
        frozenset({"and"}),
        frozenset({"in", "contains"}),
        frozenset({"=", "!=", "~", "!~"}),
        frozenset({"<", ">", "<=", ">="}),
        frozenset({"|"}),
        frozenset({"is", "as"}),
        frozenset({"+", "-", "&"}),
        frozenset({"*", "/", "div", "mod"}),
    )

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise Unsupported("unexpected end")
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise Unsupported(f"expected {expected}")
        self.at += 1
        return token

    def parse(self) -> tuple[Any, ...]:
        tree = self.binary(0)
        if self.at != len(self.tokens):
            raise Unsupported("trailing text")
        return tree

    def binary(self, level: int) -> tuple[Any, ...]:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in self._LEVELS[level] and self.tokens[self.at][0] in ("op", "id"):
            op = self.take()[1]
            left = ("op", op, left, self.binary(level + 1))
        return left

    def unary(self) -> tuple[Any, ...]:
        if self.peek() in ("+", "-"):
            raise Unsupported("polarity")
        tree = self.term()
        while self.peek() in (".", "["):
            if self.take()[1] == "[":
                raise Unsupported("indexer")
            tree = ("path", tree, self.invocation())
        return tree

    def term(self) -> tuple[Any, ...]:
        kind, text = self.tokens[self.at] if self.at < len(self.tokens) else ("", "")
        if text == "(":
            self.take()
            inner = self.binary(0)
            self.take(")")
            return inner
        if kind == "str":
            self.take()
            return ("lit", [_unquote(text[1:-1])])
        if kind == "num":
            self.take()
            if "." in text:
                raise Unsupported("decimal literal")
            return ("lit", [int(text)])
        if text == "{":
            self.take()
            self.take("}")
            return ("lit", [])
        if text in ("true", "false"):
            self.take()
            return ("lit", [text == "true"])
        if kind == "var":
            self.take()
            if text in ("$this", "%resource", "%rootResource"):
                return ("var", text)
            raise Unsupported(text)
        if text[:1].isupper() and self.tokens[self.at + 1 : self.at + 2] != [("op", "(")]:
            raise Unsupported("a type name")  # Patient.name: fhirpathpy's own rules
        return ("path", ("var", "$this"), self.invocation())

    def invocation(self) -> tuple[Any, ...]:
        kind, text = self.take()
        if kind == "bq":
            return ("member", text[1:-1])
        if kind != "id":
            raise Unsupported(f"unexpected {text}")
        if self.peek() != "(":
            return ("member", text)
        self.take("(")
        args: list[tuple[Any, ...]] = []
        while self.peek() != ")":
            args.append(self.binary(0))
            if self.peek() == ",":
                self.take()
        self.take(")")
        return ("call", text, args)


def _unquote(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            if i + 1 >= len(text) or text[i + 1] not in _ESCAPES:
                raise Unsupported("escape")
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse(expression: str) -> tuple[Any, ...]:
    """The tree of ``expression``; :class:`Unsupported` when it is outside this subset."""
    return _Parser(expression).parse()
