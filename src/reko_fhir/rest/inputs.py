"""Checks on the request itself before any interaction runs: ids, search parameters, paging.

Everything here looks at the URL and a few headers only, never at the store, and refuses with
400 and an OperationOutcome naming the parameter. The rules are FHIR's own where FHIR has one
(ids: https://hl7.org/fhir/R4/datatypes.html#id; search: https://hl7.org/fhir/R4/search.html)
and deliberately narrow elsewhere: a value that no resource this service stores could match
(a quote in a token, a date that is no date) is refused rather than searched for, so that an
injection-shaped or traversal-shaped input never reaches SQL or a file path, and nothing a
client sent is echoed back with a personnummer unmasked.
"""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import parse_qsl

from reko_fhir.domain import mask_patient_ids
from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.rest.messages import FhirRequest
from reko_fhir.rest.paging import TOTALS
from reko_fhir.rest.searchparams import MEASURE_OPERATIONS
from reko_fhir.rest.searchparams import OPERATIONS as TYPE_OPERATIONS

MAX_PARAMETERS = 100
MAX_NAME = 64
MAX_VALUE = 1024
MAX_SEGMENTS = 4  # Type/id/_history/vid
# The operations of the router tables (searchparams), as they appear in a path.
OPERATIONS = frozenset(f"${name}" for name in (*TYPE_OPERATIONS, *MEASURE_OPERATIONS))

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_VERSION = re.compile(r"[0-9]{1,18}")
_FIRST = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-.:]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Paging numbers: capped by the router (_count at 1000); beyond 18 digits no database integer
# holds them, so they are refused rather than capped.
_WHOLE = re.compile(r"[0-9]{1,18}")
# A token is [system|]code (https://hl7.org/fhir/R4/search.html#token). Systems are URIs
# (http(s) URLs, urn:oid:…), codes and identifier values are letters, digits and a little
# punctuation; quotes, semicolons, angle brackets, backslashes and the like are refused.
_TOKEN = re.compile(r"[\w\-.:/@#+ ,~()$]*(\|[\w\-.:/@#+ ,~()$]*)?")
# A reference is [Type/]id, or an absolute URL ending in Type/id; a comma separates choices.
_REFERENCE = re.compile(
    r"(https?://[\w\-.:/@~]+/)?([A-Z][A-Za-z]{0,63}/)?[A-Za-z0-9\-.]{1,64}(/_history/[0-9]{1,18})?"
)
# prefix + FHIR date/dateTime (https://hl7.org/fhir/R4/datatypes.html#dateTime). A '+' of
# the offset arrives as a space when a client did not percent-encode it; that is accepted here.
_DATE = re.compile(
    r"(eq|ne|gt|lt|ge|le|sa|eb|ap)?"
    r"[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"(Z|[+\- ][0-9]{2}:[0-9]{2})?)?)?)?"
)
_SORT = re.compile(r"-?[A-Za-z_][A-Za-z0-9_\-.]{0,63}(,-?[A-Za-z_][A-Za-z0-9_\-.]{0,63})*")
_INCLUDE = re.compile(r"[A-Za-z]{1,64}:[A-Za-z_][A-Za-z0-9_\-.]{0,63}(:[A-Za-z]{1,64})?")
_IF_MATCH = re.compile(r'(W/)?"?[0-9]{1,18}"?')

TOKEN_PARAMS = frozenset(
    {
        "identifier",
        "status",
        "code",
        "category",
        "patient.identifier",
        "subject.identifier",
        "activity-code",
    }
)
DATE_PARAMS = frozenset({"date", "sent", "_lastUpdated", "sick-leave-start", "activity-date"})
REFERENCE_PARAMS = frozenset({"patient", "subject", "owner"})
NUMBER_PARAMS = frozenset({"sick-leave-length"})
_NUMBER = re.compile(r"(eq|ne|gt|lt|ge|le)?-?[0-9]{1,18}")
FORMATS = frozenset(
    {
        "json",
        "xml",
        "application/fhir+json",
        "application/fhir+xml",
        "application/json",
        "application/xml",
        "application/json+fhir",
        "application/xml+fhir",
        "text/xml",
    }
)
SUMMARIES = frozenset({"true", "false", "text", "data", "count"})
BOOLEANS = frozenset({"true", "false"})


def check_request(request: FhirRequest) -> None:
    """Raise an OperationOutcomeError (400) for a request no interaction should see."""
    check_path(request.path)
    check_query(request.query)
    condition = request.header("if-none-exist")
    if condition is not None:
        check_condition(condition)
    if_match = request.header("if-match")
    if if_match is not None and not _IF_MATCH.fullmatch(if_match.strip()):
        raise refuse(IssueCode.INVALID, 'If-Match must be W/"<version>"', "If-Match")


def check_entry(url: str, if_none_exist: str | None, expression: str) -> None:
    """A transaction or batch entry's ``request.url`` (``Type[/id]`` or ``Type?query``) and
    ``request.ifNoneExist``, checked as the same request sent alone would be; the refusal
    names ``expression`` (e.g. ``Bundle.entry[3].request``)."""
    path, _, query = url.partition("?")
    try:
        check_path(path)
        if query:
            check_condition(query)
        if if_none_exist is not None:
            check_condition(if_none_exist)
    except OperationOutcomeError as refused:
        issues = [replace(i, expression=expression) for i in refused.issues]
        raise OperationOutcomeError(issues, status=refused.status) from None


def check_path(path: str) -> None:
    """``[Type[/id[/_history[/vid]]]]`` and ``$operation``s, as percent-decoded by the server.

    A decoded ``/`` shows up as an extra segment, a decoded ``\\`` or NUL as a character no id
    has; ``.`` and ``..`` are no ids at all.
    """
    if _CONTROL.search(path) or "\\" in path:
        raise refuse(IssueCode.INVALID, "the path holds a control character or a backslash")
    parts = [p for p in path.strip("/").split("/") if p]
    if any(".." in p or p == "." for p in parts):
        raise refuse(IssueCode.INVALID, "the path holds a '.' or '..' segment")
    if len(parts) > MAX_SEGMENTS:
        raise refuse(IssueCode.INVALID, "the path has more segments than any FHIR interaction")
    for at, part in enumerate(parts):
        if part.startswith("$"):
            if part not in OPERATIONS:
                message = f"the operation '{shown(part)}' is not supported here"
                raise refuse(IssueCode.NOT_SUPPORTED, message)
        elif at == 0:
            if not _FIRST.fullmatch(part):
                raise refuse(IssueCode.INVALID, f"'{shown(part)}' is not a resource type")
        elif part == "_history":
            continue
        elif at == 3 and parts[2] == "_history":
            if not _VERSION.fullmatch(part):
                raise refuse(IssueCode.INVALID, f"'{shown(part)}' is not a version id")
        elif not _ID.fullmatch(part):
            message = f"'{shown(part)}' is not a FHIR id (1-64 of A-Z a-z 0-9 - .)"
            raise refuse(IssueCode.INVALID, message)


def check_query(query: tuple[tuple[str, str], ...]) -> None:
    """Every parameter's name and value, and the few control parameters' grammar."""
    if len(query) > MAX_PARAMETERS:
        message = f"more than {MAX_PARAMETERS} query parameters"
        raise refuse(IssueCode.TOO_COSTLY, message)
    for name, value in query:
        check_parameter(name, value)


def check_condition(condition: str) -> None:
    """``If-None-Exist``: a search query (``identifier=sys|123``), checked like a URL's."""
    if len(condition) > MAX_PARAMETERS * (MAX_NAME + MAX_VALUE) or _CONTROL.search(condition):
        raise refuse(IssueCode.INVALID, "If-None-Exist is not a search query", "If-None-Exist")
    try:
        pairs = parse_qsl(condition, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise refuse(
            IssueCode.INVALID, "If-None-Exist is not a search query", "If-None-Exist"
        ) from None
    if not pairs:
        raise refuse(IssueCode.INVALID, "If-None-Exist names no search parameter", "If-None-Exist")
    check_query(tuple(pairs))


def check_parameter(name: str, value: str) -> None:
    # A name is echoed in messages (unknown parameters) and no name holds a personnummer.
    if len(name) > MAX_NAME or not _NAME.fullmatch(name) or mask_patient_ids(name) != name:
        message = f"'{shown(name)}' is not a search parameter name"
        raise refuse(IssueCode.INVALID, message, shown(name))
    if len(value) > MAX_VALUE:
        raise refuse(IssueCode.TOO_COSTLY, f"the value is longer than {MAX_VALUE} characters", name)
    if _CONTROL.search(value):
        raise refuse(IssueCode.INVALID, "the value holds a control character", name)
    base, _, modifier = name.partition(":")
    if modifier == "missing":
        _expect(value in BOOLEANS, "takes true or false", name)
        return
    if base in ("_count", "_offset"):
        _expect(bool(_WHOLE.fullmatch(value)), "is a whole number (0 or more)", name)
    elif base == "_format":
        # An unencoded '+' (application/fhir+json) arrives as a space.
        kind = value.split(";", maxsplit=1)[0].strip().lower().replace(" ", "+")
        _expect(kind in FORMATS, "is json or xml", name)
    elif base == "_summary":
        _expect(value in SUMMARIES, "is one of true, false, text, data, count", name)
    elif base == "_total":
        _expect(value in TOTALS, "is one of none, estimate, accurate", name)
    elif base == "_pretty":
        _expect(value in BOOLEANS, "takes true or false", name)
    elif base == "_sort":
        _expect(bool(_SORT.fullmatch(value)), "is a comma-separated list of parameters", name)
    elif base == "_include":
        _expect(bool(_INCLUDE.fullmatch(value)), "is Type:parameter", name)
    elif base == "_id":
        _expect(all(_ID.fullmatch(v) for v in value.split(",")), "holds FHIR ids", name)
    elif base in DATE_PARAMS:
        _expect(bool(_DATE.fullmatch(value)), "is a FHIR date with an optional prefix", name)
    elif base in REFERENCE_PARAMS:
        _expect(all(_REFERENCE.fullmatch(v) for v in value.split(",")), "is [Type/]id", name)
    elif base in NUMBER_PARAMS:
        _expect(bool(_NUMBER.fullmatch(value)), "is a whole number with an optional prefix", name)
    elif base in TOKEN_PARAMS:
        _expect(bool(_TOKEN.fullmatch(value)), "is [system|]code", name)


def _expect(ok: bool, rule: str, name: str) -> None:
    if not ok:
        raise refuse(IssueCode.VALUE, f"the value of {name} is not acceptable: {name} {rule}", name)


def shown(text: str, most: int = 64) -> str:
    """``text`` as it may appear in a message: personnummer masked, controls dropped, short."""
    # Masked before clipping, so a clipped number cannot escape the mask.
    text = mask_patient_ids(_CONTROL.sub("?", text))
    return text if len(text) <= most else text[:most] + "…"


def refuse(code: IssueCode, message: str, expression: str | None = None) -> OperationOutcomeError:
    return OperationOutcomeError([error(code, message, expression)], status=400)
