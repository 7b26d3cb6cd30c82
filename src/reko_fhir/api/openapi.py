"""The service's OpenAPI 3.0.3 document: the FHIR interactions the router really implements.

FastAPI sees one catch-all route, so its generated schema says nothing; this one is built from
what the router serves (https://hl7.org/fhir/R4/http.html): the types and their interactions from
:mod:`reko_fhir.rest.capabilities`, the search parameters from
:mod:`reko_fhir.rest.searchparams`, the
read-only types from the router. Written to https://spec.openapis.org/oas/v3.0.3; the CI runs
schemathesis against it (``tests/security/test_schemathesis.py``).

Bodies are loose on purpose (an object with the path's ``resourceType``): the profiles decide what
is valid and answer 422 with an OperationOutcome, which the document declares.
"""

from __future__ import annotations

from typing import Any

from reko_fhir import __version__
from reko_fhir.rest.negotiation import JSON_TYPE, XML_TYPE
from reko_fhir.rest.searchparams import (
    READ_ONLY,
    RESOURCE_TYPES,
    WRITABLE,
    chains,
    includes_of,
    search_parameters,
)

Json = dict[str, Any]

ID_PATTERN = r"^[A-Za-z0-9\-\.]{1,64}$"
"""A FHIR id (https://hl7.org/fhir/R4/datatypes.html#id)."""
AUDIT = "AuditEvent"
"""The access log: read and search only, by its own few parameters."""
AUDIT_SEARCH = ("patient", "date")


def _served(kind: str) -> tuple[str, ...]:
    return (*search_parameters(kind), *chains(kind))


DATES = frozenset({"date", "sent", "_lastUpdated", "sick-leave-start", "activity-date"})
NUMBERS = frozenset({"sick-leave-length"})
NUMBER = r"^(eq|ne|gt|lt|ge|le)?-?[0-9]{1,18}$"  # a comparison prefix and a whole number
DATE = (  # a comparison prefix and a FHIR date or dateTime (datatypes.html#dateTime)
    r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|[+-][01][0-9]:[0-5][0-9]))?)?)?$"
)
FORMATS = ["json", "xml", "application/fhir+json", "application/fhir+xml"]
REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad request",
    401: "No valid bearer token",
    403: "The token's scopes or care unit do not allow this",
    404: "Unknown resource or type",
    405: "Not an interaction of this server",
    409: "Conflict",
    410: "Deleted",
    412: "Precondition failed: If-Match is stale, or several resources match",
    413: "The body is too large",
    415: "Not FHIR JSON or XML",
    422: "The resource fails validation; nothing was stored",
}
READ = (200, 400, 401, 403, 404, 405, 410)
WRITE = (*READ, 201, 409, 412, 413, 415, 422)


def openapi_document() -> Json:
    """The OpenAPI 3.0.3 document for ``GET /openapi.json`` (a new dict on every call)."""
    paths: Json = {
        "/metadata": {"get": _op("capabilities", "The CapabilityStatement", (200,), public=True)},
        "/": {
            "post": _op(
                "transaction",
                "A transaction or batch Bundle (atomic; the same Bundle again changes nothing)",
                WRITE,
                body=_body("Bundle"),
            )
        },
        "/healthz": {"get": _probe("healthz", "The process is alive", 200)},
        "/readyz": {"get": _probe("readyz", "The store answers (503 when not)", 200, 503)},
    }
    for kind in sorted(RESOURCE_TYPES - {AUDIT}):  # AuditEvent: its own, below
        paths.update(_readable(kind, _served(kind), history=kind not in READ_ONLY))
        if kind in WRITABLE and kind not in READ_ONLY:
            _add_writes(paths, kind)
    paths.update(_readable(AUDIT, AUDIT_SEARCH, history=False, vread=False))
    paths["/Patient/{id}/$everything"] = {
        "get": _op(
            "everything-Patient",
            "The patient's case: Patient, case resources, worklist Tasks, organisations, staff",
            READ,
            ["id", "_format"],
            tag="Patient",
        )
    }
    paths.update(_measure())
    outcome = {"$ref": "#/components/schemas/OperationOutcome"}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "reko-fhir",
            "version": __version__,
            "description": "FHIR R4 REST (https://hl7.org/fhir/R4/http.html) for rehabilitation "
            "coordination; GET /metadata is the CapabilityStatement.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Resource": _resource_schema(None),
                "OperationOutcome": _resource_schema("OperationOutcome"),
            },
            "responses": {
                str(code): {
                    "description": text,
                    "content": {
                        JSON_TYPE: {
                            "schema": outcome
                            if code >= 400
                            else {"$ref": "#/components/schemas/Resource"}
                        },
                        XML_TYPE: {"schema": {"type": "string"}},
                    },
                }
                for code, text in REASONS.items()
                if code != 204
            },
            "parameters": {
                "id": {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "description": "the logical id",
                    "schema": {"type": "string", "pattern": ID_PATTERN},
                },
                "vid": {
                    "name": "vid",
                    "in": "path",
                    "required": True,
                    "description": "the version (meta.versionId)",
                    "schema": {"type": "integer", "minimum": 1},
                },
                "_count": _query("_count", "page size (at most 1000)", {"type": "integer"}),
                "_format": _query(
                    "_format", "the answer's format", {"type": "string", "enum": FORMATS}
                ),
                "Prefer": _header("Prefer", "return=minimal | representation | OperationOutcome"),
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"bearer": []}],
    }


def _readable(kind: str, searchable: tuple[str, ...], *, history: bool, vread: bool = True) -> Json:
    """Search, read, and (where served) vread and the history interactions of ``kind``."""
    paths: Json = {
        f"/{kind}": {
            "get": _op(
                f"search-{kind}",
                f"Search {kind}: a searchset Bundle with paging links",
                READ,
                _search(kind, searchable),
            )
        },
        f"/{kind}/{{id}}": {"get": _op(f"read-{kind}", f"Read {kind}/id", READ, ["id", "_format"])},
    }
    if vread:
        paths[f"/{kind}/{{id}}/_history/{{vid}}"] = {
            "get": _op(f"vread-{kind}", "Read one version", READ, ["id", "vid", "_format"])
        }
    if history:
        paths[f"/{kind}/{{id}}/_history"] = {
            "get": _op(f"history-instance-{kind}", "Every version", READ, ["id", "_format"])
        }
        paths[f"/{kind}/_history"] = {
            "get": _op(f"history-type-{kind}", f"Every version of every {kind}", READ, ["_format"])
        }
    return paths


def _add_writes(paths: Json, kind: str) -> None:
    """Create, conditional update, update, delete and ``$validate`` of a writable type."""
    body = _body(kind)
    paths[f"/{kind}"]["post"] = _op(
        f"create-{kind}",
        f"Create a {kind}; conditional with If-None-Exist",
        WRITE,
        ["_format", _header("If-None-Exist", "a search, e.g. identifier=s|v"), "Prefer"],
        body=body,
    )
    paths[f"/{kind}"]["put"] = _op(
        f"conditional-update-{kind}",
        f"Update the one {kind} the search names, or create it",
        WRITE,
        [*_search(kind, _served(kind)), "Prefer"],
        body=body,
    )
    paths[f"/{kind}/{{id}}"]["put"] = _op(
        f"update-{kind}",
        f"Update or create {kind}/id; If-Match for optimistic locking",
        WRITE,
        ["id", "_format", _header("If-Match", 'W/"<version>"'), "Prefer"],
        body=body,
    )
    paths[f"/{kind}/{{id}}"]["delete"] = _op(
        f"delete-{kind}", "Delete: a tombstone, later reads answer 410", (204, *READ), ["id"]
    )
    paths[f"/{kind}/$validate"] = {
        "post": _op(
            f"validate-{kind}",
            "Validate against the profiles and the store's rules; nothing is stored",
            WRITE,
            [_query("profile", "canonical URL of a profile to validate against")],
            body=body,
        )
    }


def _search(kind: str, searchable: tuple[str, ...]) -> list[Json | str]:
    """The search parameters (strings, as FHIR sends them; dates as FHIR dates with a
    comparison prefix) and the result controls (https://hl7.org/fhir/R4/search.html)."""
    found: list[Json | str] = [
        _query(
            n,
            f"search parameter '{n}'",
            {"type": "string", "pattern": DATE}
            if n in DATES
            else ({"type": "string", "pattern": NUMBER} if n in NUMBERS else None),
        )
        for n in searchable
    ]
    if kind == AUDIT:
        return [*found, "_count"]
    sort = ["_lastUpdated", "-_lastUpdated", "_id", "-_id"]
    include = includes_of(kind)
    summary = ["count", "true", "false", "data", "text"]
    totals = ["none", "estimate", "accurate"]
    return [
        *found,
        "_count",
        _query("_offset", "where the page starts", {"type": "integer", "minimum": 0}),
        _query("_sort", "the order", {"type": "string", "enum": sort}),
        _query("_include", "the patients the matches name", {"type": "string", "enum": include}),
        _query("_summary", "'count' answers the total only", {"type": "string", "enum": summary}),
        _query("_total", "how exactly to count the matches", {"type": "string", "enum": totals}),
        "_format",
    ]


def _op(
    operation_id: str,
    summary: str,
    codes: tuple[int, ...],
    parameters: list[Json | str] | None = None,
    *,
    body: Json | None = None,
    tag: str | None = None,
    public: bool = False,
) -> Json:
    """One operation; parameters given by name are ``#/components/parameters`` references."""
    operation: Json = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag or (operation_id.rpartition("-")[2] if "-" in operation_id else "system")],
        "responses": {
            str(code): {"description": REASONS[code]}
            if code == 204
            else {"$ref": f"#/components/responses/{code}"}
            for code in sorted(codes)
        },
    }
    if parameters:
        operation["parameters"] = [
            {"$ref": f"#/components/parameters/{p}"} if isinstance(p, str) else p
            for p in parameters
        ]
    if body is not None:
        operation["requestBody"] = body
    if public:
        operation["security"] = []
    return operation


def _measure() -> Json:
    """``Measure/kva-statistik`` and its ``$evaluate-measure`` (rest/measure.py)."""
    evaluate: list[Json | str] = [
        _query("periodStart", "first day (YYYY, YYYY-MM or YYYY-MM-DD)"),
        _query("periodEnd", "last day, included"),
        _query("subject", "the care unit: Organization/{id}"),
        _query("reportType", "summary", {"type": "string", "enum": ["summary"]}),
        "_format",
    ]
    summary = "The KVÅ statistics of a care unit and a period: a summary MeasureReport"
    return {
        "/Measure/kva-statistik": {
            "get": _op("read-Measure", "The Measure kva-statistik", READ, ["_format"])
        },
        "/Measure/kva-statistik/$evaluate-measure": {
            "get": _op("evaluate-Measure", summary, READ, evaluate),
            "post": _op(
                "evaluate-post-Measure", summary, READ, ["_format"], body=_body("Parameters")
            ),
        },
    }


def _probe(operation_id: str, summary: str, *codes: int) -> Json:
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    content = {"application/json": {"schema": status}}
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["operations"],
        "security": [],
        "responses": {str(c): {"description": str(c), "content": content} for c in codes},
    }


def _resource_schema(kind: str | None) -> Json:
    schema: Json = {"type": "object", "required": ["resourceType"]}
    schema["properties"] = {
        "resourceType": {"type": "string", **({"enum": [kind]} if kind else {})}
    }
    return schema


def _body(kind: str) -> Json:
    """A request body of ``kind``: FHIR JSON (loose, the profiles decide) or FHIR XML."""
    resource = _resource_schema(kind)
    if kind == "Bundle":
        resource["properties"]["type"] = {"type": "string", "enum": ["transaction", "batch"]}
        resource["properties"]["entry"] = {"type": "array", "items": {"type": "object"}}
    else:
        resource["properties"]["id"] = {"type": "string", "pattern": ID_PATTERN}
    content = {JSON_TYPE: {"schema": resource}, XML_TYPE: {"schema": {"type": "string"}}}
    return {"required": True, "content": content}


def _query(name: str, description: str, schema: Json | None = None) -> Json:
    schema = schema or {"type": "string"}
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _header(name: str, description: str) -> Json:
    return {"name": name, "in": "header", "description": description, "schema": {"type": "string"}}
