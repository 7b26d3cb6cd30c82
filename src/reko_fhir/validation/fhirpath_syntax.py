"""A strict syntax check of FHIRPath expressions before fhirpathpy compiles them.

fhirpathpy's parser recovers from syntax errors (its ANTLR error listener ignores them), so a
malformed invariant such as ``name..family`` or ``)(`` compiles into something that evaluates,
usually to an empty result, which would count as holding. Parsed here with the same generated
grammar (https://hl7.org/fhirpath/N1/grammar.html) and an error listener that stops at the
first error, and with the whole text consumed, a malformed expression is undecided instead.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from antlr4 import CommonTokenStream, InputStream, Token  # type: ignore[import-untyped]
from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser


class _SyntaxError(Exception):
    pass


class _Strict(ErrorListener):  # type: ignore[misc]
    def syntaxError(  # noqa: N802, PLR0917 - ANTLR's callback
        self, recognizer: Any, offending: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        raise _SyntaxError(f"column {column + 1}: {msg}")


@cache
def syntax_error(expression: str) -> str | None:
    """Why ``expression`` is not FHIRPath, or None when it parses as a whole."""
    listener = _Strict()
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    try:
        parser.expression()
        rest = parser.getCurrentToken()
    except _SyntaxError as exc:
        return str(exc)
    except Exception as exc:  # the lexer raises its own errors on characters it cannot read
        return f"{type(exc).__name__}: {exc}"
    if rest is not None and rest.type != Token.EOF:
        return f"column {rest.column + 1}: unexpected '{rest.text}' after the expression"
    return None
