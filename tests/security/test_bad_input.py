"""A corpus of malformed and malicious requests against a real ``reko-fhir serve``.

Every case must be refused with a 4xx and an OperationOutcome (the exact status where the
requirement names one: 413 too large, 415 unsupported media type, 400 unreadable, 422 invalid
content), must not echo a personnummer it carried, must leave the server healthy and the store
unchanged (row counts, the access log aside). At the end, the server's log must hold no
personnummer a case sent and no traceback.

The requests always carry ``service.headers()`` (a valid token for a care unit with every
scope), so the refusals are about the input, not about authentication.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.golden import FIXTURES
from tests.security.conftest import Service

# Tolvan Tolvansson, the Tax Agency's test personnummer (valid check digit), and variants.
PNR = "191212121212"
PNR_BAD_CHECK = "191212121213"
PNR_OTHER = "197804122385"
PERSONNUMMER_SYSTEM = "http://electronichealth.se/identifier/personnummer"
FHIR_XML = {"content-type": "application/fhir+xml"}
MB = 1024 * 1024
# A 12-digit personnummer (century first) in what a case sent; these must never come back.
_PERSONNUMMER = re.compile(r"(?<!\d)(?:19|20)\d{10}(?!\d)")
SENT: set[str] = set()

Body = bytes | Callable[[], Iterator[bytes]]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    target: str  # path and query, as sent on the wire (percent-encoding kept)
    body: Body = b""
    headers: dict[str, str] = field(default_factory=dict)
    status: frozenset[int] = frozenset({400})
    length: bool = True  # for a streamed body: announce Content-Length (else chunked)


def case(
    name: str,
    method: str,
    target: str,
    body: Body = b"",
    headers: dict[str, str] | None = None,
    status: int | set[int] = 400,
    *,
    length: bool = True,
) -> Any:
    statuses = frozenset({status} if isinstance(status, int) else status)
    return pytest.param(Case(name, method, target, body, headers or {}, statuses, length), id=name)


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return doc


def patient(pnr: str = PNR, **extra: Any) -> dict[str, Any]:
    doc = fixture("valid/patient-personnummer-system.json")
    doc["identifier"] = [{"system": PERSONNUMMER_SYSTEM, "value": pnr}]
    return {**doc, **extra}


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def streamed(size: int, chunk: int = MB) -> Callable[[], Iterator[bytes]]:
    """A body of ``size`` bytes made on the fly, so the test never holds all of it."""

    def chunks() -> Iterator[bytes]:
        head = b'{"resourceType": "Patient", "name": [{"family": "'
        yield head
        left = size - len(head) - 4
        block = b"a" * chunk
        while left > 0:
            yield block[: min(chunk, left)]
            left -= chunk
        yield b'"}]}'

    return chunks


# -- XML bodies ------------------------------------------------------------------------------
XML_PATIENT = b'<Patient xmlns="http://hl7.org/fhir"><gender value="&x;"/></Patient>'
XXE_FILE = b'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
XXE_HTTP = b'<!DOCTYPE Patient [<!ENTITY x SYSTEM "http://127.0.0.1:9/steal">]>'
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY l0 "ha">'
    + b"".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">'.encode() for i in range(1, 10))
    + b']><Patient xmlns="http://hl7.org/fhir"><gender value="&l9;"/></Patient>'
)
QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY x "'
    + b"a" * 100_000
    + b'">]><Patient xmlns="http://hl7.org/fhir"><gender value="'
    + b"&x;" * 20_000
    + b'"/></Patient>'
)
EXTERNAL_DTD = (
    b'<?xml version="1.0"?><!DOCTYPE Patient SYSTEM "http://127.0.0.1:9/fhir.dtd">'
    b'<Patient xmlns="http://hl7.org/fhir"/>'
)
PARAMETER_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
    b'<Patient xmlns="http://hl7.org/fhir"/>'
)
UTF16_DOCTYPE = (
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE Patient [<!ENTITY x "male">]>'
    '<Patient xmlns="http://hl7.org/fhir"><gender value="&x;"/></Patient>'
).encode("utf-16")
UTF16_NO_BOM = (
    '<!DOCTYPE Patient [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<Patient xmlns="http://hl7.org/fhir"><gender value="&x;"/></Patient>'
).encode("utf-16-le")
LATE_DOCTYPE = b"<?xml version='1.0'?>" + b"<!-- padding -->\n" * 2000 + XXE_FILE[21:] + XML_PATIENT
DEEP_XML = (
    b'<Patient xmlns="http://hl7.org/fhir">'
    + b'<extension url="x">' * 10_000
    + b"</extension>" * 10_000
    + b"</Patient>"
)
HUGE_ATTRIBUTE = (
    b'<Patient xmlns="http://hl7.org/fhir"><gender value="' + b"m" * (5 * MB) + b'"/></Patient>'
)
XINCLUDE = (
    b'<Patient xmlns="http://hl7.org/fhir" xmlns:xi="http://www.w3.org/2001/XInclude">'
    b'<xi:include href="file:///etc/passwd" parse="text"/></Patient>'
)

# -- JSON bodies -----------------------------------------------------------------------------
DEEP_ARRAYS = b'{"resourceType": "Patient", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
DEEP_OBJECTS = (
    b'{"resourceType": "Patient", "x": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_000 + b"}"
)
TRAVERSAL_ENTRY = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "fullUrl": "urn:uuid:8f0c3a51-3b3e-4c44-9b51-0c8f1f5a7a01",
            "resource": patient(PNR_OTHER),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "resource": {**patient(PNR), "id": ".."},
            "request": {"method": "PUT", "url": "Patient/../../etc/passwd"},
        },
    ],
}
INJECTION_ENTRY = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "resource": patient(PNR_OTHER),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "resource": patient(PNR_BAD_CHECK),
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=' OR 1=1--"},
        },
    ],
}


def many_entries() -> bytes:
    """About 8.5 MB: below the body limit, so the Bundle itself must be refused."""
    entry = dumps(
        {"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": "Patient"}}
    )
    head = b'{"resourceType": "Bundle", "type": "transaction", "entry": ['
    return head + b",".join([entry] * 100_000) + b"]}"


ID_65 = "a" * 65
PROCEDURE_WITH_DIAGNOSIS = dumps(fixture("invalid/procedure-no-diagnosis.json"))

CORPUS = [
    # XML: DTDs, entities, network and size
    case("xxe-file", "POST", "/Patient", XXE_FILE + XML_PATIENT, FHIR_XML),
    case("xxe-http", "POST", "/Patient", XXE_HTTP + XML_PATIENT, FHIR_XML),
    case("billion-laughs", "POST", "/Patient", LAUGHS, FHIR_XML),
    case("quadratic-blowup", "POST", "/Patient", QUADRATIC, FHIR_XML),
    case("external-dtd", "POST", "/Patient", EXTERNAL_DTD, FHIR_XML),
    case("parameter-entity", "POST", "/Patient", PARAMETER_ENTITY, FHIR_XML),
    case("xml-utf16-doctype", "POST", "/Patient", UTF16_DOCTYPE, FHIR_XML),
    case("xml-utf16-no-bom-doctype", "POST", "/Patient", UTF16_NO_BOM, FHIR_XML),
    case("xml-late-doctype", "POST", "/Patient", LATE_DOCTYPE, FHIR_XML),
    case("xml-doctype-sniffed", "POST", "/Patient", XXE_FILE + XML_PATIENT, {"content-type": ""}),
    case("xml-10000-deep", "POST", "/Patient", DEEP_XML, FHIR_XML),
    case("xml-5mb-attribute", "POST", "/Patient", HUGE_ATTRIBUTE, FHIR_XML, {400, 422}),
    case("xml-undefined-entity", "POST", "/Patient", XML_PATIENT, FHIR_XML),
    case(
        "xml-not-fhir-namespace",
        "POST",
        "/Patient",
        b"<Patient><id value='x'/></Patient>",
        FHIR_XML,
    ),
    case(
        "xml-latin1-declared",
        "POST",
        "/Patient",
        b"<?xml version='1.0' encoding='ISO-8859-1'?><Patient xmlns='http://hl7.org/fhir'/>",
        FHIR_XML,
    ),
    case("xml-xinclude", "POST", "/Patient", XINCLUDE, FHIR_XML, {400, 422}),
    case("xml-unclosed", "POST", "/Patient", b"<Patient xmlns='http://hl7.org/fhir'>", FHIR_XML),
    # JSON: encoding, nesting, numbers, structure
    case("json-10000-deep-arrays", "POST", "/Patient", DEEP_ARRAYS),
    case("json-10000-deep-objects", "POST", "/Patient", DEEP_OBJECTS),
    case(
        "json-invalid-utf8", "POST", "/Patient", b'{"resourceType": "Patient", "x": "\xff\xfe\xc3"}'
    ),
    case("json-utf16", "POST", "/Patient", dumps(patient()).decode().encode("utf-16")),
    case("json-utf16-no-bom", "POST", "/Patient", dumps(patient()).decode().encode("utf-16-le")),
    case("json-nan", "POST", "/Patient", b'{"resourceType": "Patient", "x": NaN}'),
    case("json-infinity", "POST", "/Patient", b'{"resourceType": "Patient", "x": -Infinity}'),
    case("json-1e999", "POST", "/Patient", b'{"resourceType": "Patient", "x": 1e999}'),
    case(
        "json-5000-digit-integer",
        "POST",
        "/Patient",
        b'{"resourceType": "Patient", "x": ' + b"9" * 5000 + b"}",
    ),
    case(
        "json-duplicate-keys",
        "POST",
        "/Patient",
        b'{"resourceType": "Patient", "gender": "male", "gender": "female"}',
    ),
    case(
        "json-duplicate-resource-type",
        "POST",
        "/Patient",
        b'{"resourceType": "Patient", "resourceType": "Procedure"}',
    ),
    case("json-top-level-array", "POST", "/Patient", dumps([patient()])),
    case("json-top-level-string", "POST", "/Patient", b'"Patient"'),
    case("json-top-level-null", "POST", "/Patient", b"null"),
    case("json-empty-body", "POST", "/Patient", b""),
    case("json-blank-body", "PUT", "/Patient/abc", b" \r\n\t "),
    case("json-truncated", "POST", "/Patient", dumps(patient())[:-5]),
    case("json-resource-type-missing", "POST", "/Patient", dumps({"gender": "male"})),
    case("json-resource-type-number", "POST", "/Patient", dumps({"resourceType": 7})),
    case("wrong-resource-type-for-url", "POST", "/Procedure", dumps(patient())),
    case("unknown-resource-type-in-body", "POST", "/Patient", dumps({"resourceType": "Nonsense"})),
    case(
        "unknown-resource-type-in-url",
        "POST",
        "/Nonsense",
        dumps({"resourceType": "Nonsense"}),
        status=404,
    ),
    case("abstract-resource", "POST", "/Patient", dumps({"resourceType": "Resource"})),
    case("abstract-resource-at-root", "POST", "/", dumps({"resourceType": "DomainResource"})),
    case("update-id-mismatch", "PUT", "/Patient/abc", dumps(patient(id="xyz"))),
    # content that parses but is not valid
    case("invalid-personnummer", "POST", "/Patient", dumps(patient(PNR_BAD_CHECK)), status=422),
    case("procedure-with-diagnosis", "POST", "/Procedure", PROCEDURE_WITH_DIAGNOSIS, status=422),
    case(
        "invalid-birth-date",
        "POST",
        "/Patient",
        dumps(patient(birthDate="2024-13-45")),
        status={400, 422},
    ),
    case(
        "invalid-birth-date-text",
        "POST",
        "/Patient",
        dumps(patient(birthDate="yesterday")),
        status={400, 422},
    ),
    case(
        "control-characters-in-string",
        "POST",
        "/Patient",
        dumps(patient(name=[{"family": "Tolvansson\u0000\u0007\u001b[2J"}])),
        status={400, 422},
    ),
    case(
        "2mb-string-in-invalid-patient",
        "POST",
        "/Patient",
        dumps(patient(PNR_BAD_CHECK, name=[{"family": "T" * (2 * MB)}])),
        status=422,
    ),
    case(
        "unknown-element",
        "POST",
        "/Patient",
        dumps(patient(shoeSize=44, _gender={"x": 1})),
        status={400, 422},
    ),
    # Bundles
    case("transaction-traversal-entry", "POST", "/", dumps(TRAVERSAL_ENTRY), status={400, 422}),
    case("transaction-injection-entry", "POST", "/", dumps(INJECTION_ENTRY), status={400, 422}),
    case("transaction-100000-entries", "POST", "/", many_entries(), status={400, 413, 422}),
    case(
        "bundle-not-transaction",
        "POST",
        "/",
        dumps({"resourceType": "Bundle", "type": "collection"}),
    ),
    # media types
    case(
        "content-type-text-plain",
        "POST",
        "/Patient",
        dumps(patient()),
        {"content-type": "text/plain"},
        415,
    ),
    case(
        "content-type-form",
        "POST",
        "/Patient",
        b"resourceType=Patient&gender=male",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
    ),
    case(
        "content-type-multipart",
        "POST",
        "/Patient",
        b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\n{}\r\n--b--\r\n',
        {"content-type": "multipart/form-data; boundary=b"},
        415,
    ),
    case(
        "content-type-fake-json",
        "POST",
        "/Patient",
        dumps(patient()),
        {"content-type": "application/x-evil-json-xml"},
        415,
    ),
    case(
        "charset-utf16",
        "POST",
        "/Patient",
        dumps(patient()).decode().encode("utf-16"),
        {"content-type": "application/fhir+json; charset=utf-16"},
        415,
    ),
    # size
    case("body-11mb", "POST", "/Patient", b"".join(streamed(11 * MB)()), status=413),
    case("body-100mb-with-length", "POST", "/Patient", streamed(100 * MB), status=413),
    case("body-100mb-chunked", "POST", "/Patient", streamed(100 * MB), status=413, length=False),
    # search values shaped like SQL injection
    case("search-identifier-injection", "GET", "/Patient?identifier=%27%20OR%201%3D1--"),
    case("search-id-injection", "GET", "/Patient?_id=1%3BDROP%20TABLE%20resource_current"),
    case("search-sort-injection", "GET", "/Patient?_sort=1%3BDELETE"),
    case("search-date-injection", "GET", "/Procedure?date=ge2024%27%20OR%20%271%27%3D%271"),
    case(
        "search-patient-injection", "GET", "/Procedure?patient=Patient/1%27%20OR%20%271%27%3D%271"
    ),
    case("search-chained-injection", "GET", "/Procedure?patient.identifier=x%22%3B--"),
    case("search-name-injection", "GET", "/Patient?a%27%3B--=1"),
    case("search-control-character", "GET", "/Patient?identifier=abc%01def"),
    case("search-value-2000-chars", "GET", "/Patient?identifier=" + "a" * 2000),
    case("search-150-parameters", "GET", "/Patient?" + "&".join(f"p{i}=1" for i in range(150))),
    case("search-personnummer-as-date", "GET", f"/Procedure?date={PNR}"),
    case(
        "search-unknown-strict",
        "GET",
        "/Patient?shoeSize=44",
        headers={"prefer": "handling=strict"},
    ),
    case("search-missing-not-boolean", "GET", "/Patient?identifier:missing=maybe"),
    # ids and paths
    case("traversal-encoded-slashes", "GET", "/Patient/..%2F..%2Fetc%2Fpasswd"),
    case("traversal-dot-dot", "GET", "/Patient/%2e%2e"),
    case("traversal-nul", "GET", "/Patient/a%00b"),
    case("traversal-backslash", "GET", "/Patient/..%5C..%5Cwindows"),
    case("traversal-delete", "DELETE", "/Patient/..%2F..%2Fresource_current"),
    case("traversal-put", "PUT", "/Patient/%2e%2e", dumps(patient(id=".."))),
    case("id-65-chars", "GET", f"/Patient/{ID_65}"),
    case("read-personnummer-as-id", "GET", f"/Patient/{PNR}", status=404),
    case(
        "search-name-with-personnummer",
        "GET",
        f"/Patient?_{PNR}=1",
        headers={"prefer": "handling=strict"},
    ),
    case("id-with-personnummer-and-quote", "GET", f"/Patient/{PNR}%27"),
    case("version-not-a-number", "GET", "/Patient/abc/_history/1%3B--"),
    case("unknown-operation", "GET", "/Patient/abc/$shell"),
    case("too-many-segments", "GET", "/Patient/abc/_history/1/x/y"),
    # paging and format
    case("count-huge", "GET", "/Patient?_count=10000000000000000000000"),
    case("count-negative", "GET", "/Patient?_count=-1"),
    case("count-not-a-number", "GET", "/Patient?_count=abc"),
    case("offset-negative", "GET", "/Patient?_offset=-50"),
    case("format-unknown", "GET", "/Patient?_format=application/x-shellscript"),
    case("summary-unknown", "GET", "/Patient?_summary=everything"),
    # headers
    case(
        "if-match-garbage", "PUT", "/Patient/abc", dumps(patient(id="abc")), {"if-match": "garbage"}
    ),
    case(
        "if-none-exist-not-a-query",
        "POST",
        "/Patient",
        dumps(patient()),
        {"if-none-exist": '{"identifier": "' + PNR + '"}'},
    ),
    case(
        "if-none-exist-injection",
        "POST",
        "/Patient",
        dumps(patient()),
        {"if-none-exist": "identifier=' OR 1=1--"},
    ),
]


@pytest.fixture(scope="module")
def http(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def baseline(service: Service, http: httpx.Client) -> dict[str, int]:
    """The store after a little valid data: "unchanged" is then about a store that holds some."""
    seed = fixture("valid/patient-personnummer-system.json")
    answer = http.post("/Patient", content=dumps(seed), headers=service.headers())
    assert answer.status_code == 201, answer.text
    counts = service.row_counts()
    assert counts.get("resource_current", 0) >= 1, counts
    return counts


def _send(service: Service, http: httpx.Client, bad: Case) -> httpx.Response:
    headers = {**service.headers(), **bad.headers}
    headers = {k: v for k, v in headers.items() if v}  # "" removes a header
    if callable(bad.body):
        if bad.length:
            size = sum(len(c) for c in bad.body())
            headers["content-length"] = str(size)
        return http.request(bad.method, bad.target, content=bad.body(), headers=headers)
    return http.request(bad.method, bad.target, content=bad.body, headers=headers)


def _sent_numbers(bad: Case) -> set[str]:
    text = bad.target + " " + " ".join(bad.headers.values())
    if isinstance(bad.body, bytes) and len(bad.body) < 20 * MB:
        text += bad.body.decode("utf-8", "replace") + bad.body.decode("utf-16", "replace")
    return set(_PERSONNUMMER.findall(text))


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 45


@pytest.mark.parametrize("bad", CORPUS)
def test_bad_input_is_refused_and_changes_nothing(
    service: Service, http: httpx.Client, baseline: dict[str, int], bad: Case
) -> None:
    numbers = _sent_numbers(bad)
    SENT.update(numbers)
    answer = _send(service, http, bad)
    healthy = service.healthy()
    after = service.row_counts()
    # Each case is judged against the store as it found it, so one failure does not cascade.
    changed = {k: (baseline.get(k), v) for k, v in after.items() if baseline.get(k) != v}
    baseline.clear()
    baseline.update(after)
    assert answer.status_code in bad.status, (answer.status_code, answer.text[:500], changed)
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    issues = outcome["issue"]
    assert any(i.get("severity") and i.get("code") and i.get("diagnostics") for i in issues)
    for number in numbers:
        assert number not in answer.text, f"the answer echoes {number}"
    assert healthy, "the server is not healthy after this case"
    assert not changed, f"the store changed (before, after): {changed}"


def test_a_huge_count_within_range_is_capped_not_refused(
    service: Service, http: httpx.Client, baseline: dict[str, int]
) -> None:
    answer = http.get("/Patient", params={"_count": "5000"}, headers=service.headers())
    assert answer.status_code == 200, answer.text
    assert "_count=1000" in answer.json()["link"][0]["url"]


@pytest.mark.parametrize(
    "params",
    [
        {"identifier": f"{PERSONNUMMER_SYSTEM}|{PNR}"},
        {"identifier": "199103744521"},
        {"_sort": "-_lastUpdated", "_count": "2", "_offset": "0"},
        {"_format": "application/fhir+json"},
        {"_lastUpdated": "ge2024-01-01T00:00:00+01:00"},
    ],
    ids=["system-and-value", "value", "sort-and-paging", "format", "date-with-offset"],
)
def test_legitimate_searches_still_work(
    service: Service, http: httpx.Client, baseline: dict[str, int], params: dict[str, str]
) -> None:
    answer = http.get("/Patient", params=params, headers=service.headers())
    assert answer.status_code == 200, answer.text
    assert answer.json()["resourceType"] == "Bundle"


def test_legitimate_procedure_search_with_chain_and_include(
    service: Service, http: httpx.Client, baseline: dict[str, int]
) -> None:
    params = {"patient.identifier": f"system|{PNR}", "_include": "Procedure:patient"}
    answer = http.get("/Procedure", params=params, headers=service.headers())
    assert answer.status_code == 200, answer.text


def test_a_2mb_string_is_stored_or_refused_never_a_failure(
    service: Service, http: httpx.Client, baseline: dict[str, int]
) -> None:
    """Last of the writes: a valid Patient may be stored, so the row counts are not compared."""
    body = dumps(patient(PNR_OTHER, name=[{"family": "T" * (2 * MB)}]))
    SENT.add(PNR_OTHER)
    answer = http.post("/Patient", content=body, headers=service.headers())
    assert answer.status_code < 500, answer.text[:500]
    assert answer.status_code in (200, 201) or 400 <= answer.status_code < 500
    assert service.healthy()


def test_the_log_holds_no_personnummer_and_no_traceback(service: Service) -> None:
    """Runs last in the module: everything the corpus sent has been logged by now."""
    log = Path(service.log).read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-3000:]
    leaked = sorted(n for n in SENT | {PNR, PNR_BAD_CHECK, PNR_OTHER} if n in log)
    assert not leaked, f"the log holds {leaked}"
