"""RIVTA OID roots <-> the FHIR identifier systems of the project, both ways.

RIVTA contracts carry identifiers as ``root`` (an OID) + ``extension`` (the value); FHIR
carries them as ``system`` (a URI) + ``value``. The project's FHIR systems are the HL7 Sweden
base-profile ones spelled in :mod:`reko_fhir.mapping.codings`; the roots are those of the
contracts (``rivta/xsd/README.md``): personnummer ``1.2.752.129.2.1.3.1``,
samordningsnummer ``1.2.752.129.2.1.3.3``, HSA-id ``1.2.752.129.2.1.4.1``. Any other OID maps
to ``urn:oid:<oid>`` and back (RFC 3001), so nothing is lost for roots we do not know.
"""

from __future__ import annotations

import re

from reko_fhir.domain import PatientId, PatientIdKind
from reko_fhir.mapping import codings

PERSONNUMMER_ROOT = "1.2.752.129.2.1.3.1"
SAMORDNINGSNUMMER_ROOT = "1.2.752.129.2.1.3.3"
HSA_ROOT = codings.HSA_RIVTA.removeprefix("urn:oid:")  # spelled once, in codings

PATIENT_ROOTS = {
    PatientIdKind.PERSONNUMMER: PERSONNUMMER_ROOT,
    PatientIdKind.SAMORDNINGSNUMMER: SAMORDNINGSNUMMER_ROOT,
}

_SYSTEM_BY_ROOT = {
    PERSONNUMMER_ROOT: codings.PERSONNUMMER,
    SAMORDNINGSNUMMER_ROOT: codings.SAMORDNINGSNUMMER,
    HSA_ROOT: codings.HSA,
}
_ROOT_BY_SYSTEM = {system: root for root, system in _SYSTEM_BY_ROOT.items()}
# HSA_RIVTA is the RIVTA root written as a URN; codings accepts it on input, so do we.
_ROOT_BY_SYSTEM[codings.HSA_RIVTA] = HSA_ROOT

# ITU-T X.660 dotted form: arcs without leading zeros, the first arc 0, 1 or 2.
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+", re.ASCII)
_URN_OID = "urn:oid:"


class UnknownSystemError(ValueError):
    """A FHIR system that has no OID root (neither a known system nor ``urn:oid:``)."""


def is_oid(text: str) -> bool:
    return _OID.fullmatch(text) is not None


def fhir_system(root: str) -> str:
    """The FHIR identifier system for a RIVTA ``root``; ``urn:oid:<root>`` for unknown OIDs."""
    if not is_oid(root):
        raise ValueError(f"{root!r} is not an OID")
    return _SYSTEM_BY_ROOT.get(root, _URN_OID + root)


def oid_root(system: str) -> str:
    """The RIVTA ``root`` for a FHIR identifier system; inverse of :func:`fhir_system`."""
    known = _ROOT_BY_SYSTEM.get(system)
    if known is not None:
        return known
    if system.startswith(_URN_OID) and is_oid(system[len(_URN_OID) :]):
        return system[len(_URN_OID) :]
    raise UnknownSystemError(f"the identifier system {system!r} has no OID root")


def patient_root(patient: PatientId) -> str:
    """The root that fits the kind of number (samordningsnummer: day + 60)."""
    return PATIENT_ROOTS[patient.kind]


def patient_kind(root: str) -> PatientIdKind | None:
    """The kind of patient number a root announces, or None when it is no patient root."""
    for kind, known in PATIENT_ROOTS.items():
        if known == root:
            return kind
    return None
