"""The closed vocabularies of the coordination world.

Code values equal the codes fixed in the profile contract (``profiles/contract.md``), so the
mapping layer turns a member into a FHIR Coding without a lookup table.
"""

from __future__ import annotations

from enum import StrEnum


class CoordinationPart(StrEnum):
    """The three parts of koordineringsinsatser (Lag 2019:1297)."""

    PERSONLIGT_STOD = "personligt-stod"
    INTERN_SAMORDNING = "intern-samordning"
    EXTERN_SAMVERKAN = "extern-samverkan"


class KvaCode(StrEnum):
    """KVÅ codes (Socialstyrelsen) used to journal coordination."""

    GC001 = "GC001"  # koordineringsinsatser för att främja återgång eller inträde i arbetslivet
    DV077 = "DV077"  # sjukskrivnings- och rehabiliteringsplan för återgång i arbetslivet
    AW026 = "AW026"  # uppföljning av sjukskrivnings- och rehabiliteringsplan

    @property
    def display(self) -> str:
        return _KVA_DISPLAY[self]


_KVA_DISPLAY = {
    KvaCode.GC001: "Koordineringsinsatser för att främja återgång eller inträde i arbetslivet",
    KvaCode.DV077: "Sjukskrivnings- och rehabiliteringsplan för återgång i arbetslivet",
    KvaCode.AW026: "Uppföljning av sjukskrivnings- och rehabiliteringsplan",
}


class RekoRole(StrEnum):
    """Staff roles in coordination (``reko-role``)."""

    REHABILITERINGSKOORDINATOR = "rehabiliteringskoordinator"
    LAKARE = "lakare"
    SJUKSKOTERSKA = "sjukskoterska"
    ARBETSTERAPEUT = "arbetsterapeut"
    FYSIOTERAPEUT = "fysioterapeut"
    PSYKOLOG = "psykolog"
    KURATOR = "kurator"
    ANNAN = "annan"


class ActorType(StrEnum):
    """Kinds of external actor (``reko-actor-type``)."""

    FORSAKRINGSKASSAN = "forsakringskassan"
    ARBETSFORMEDLINGEN = "arbetsformedlingen"
    ARBETSGIVARE = "arbetsgivare"
    KOMMUN = "kommun"
    FORETAGSHALSOVARD = "foretagshalsovard"
    ANNAN = "annan"


class RekoStatus(StrEnum):
    """The REKO status of a case as Rehabstöd shows it (``reko-status``)."""

    INGEN = "ingen"  # Rehabstöd's "no status" (contract 2)
    KONTAKTAD = "kontaktad"
    AKTIV = "aktiv"
    UPPFOLJNING = "uppfoljning"
    AVSLUTAD = "avslutad"
    AVBOJT = "avbojt"
    LAMNAS_UTAN_ATGARD = "lamnas-utan-atgard"
    MEDICINSK_REHAB = "medicinsk-rehab"

    @property
    def is_closed(self) -> bool:
        return self in _CLOSED_STATUSES

    @property
    def rehabstod_id(self) -> str:
        """Rehabstöd's id of the status (``REKO_1`` for ``ingen`` … ``REKO_8``): the
        ``rehabstod-id`` property of CodeSystem reko-status (contract 2)."""
        return REHABSTOD_IDS[self]

    @classmethod
    def from_rehabstod_id(cls, rehabstod_id: str) -> RekoStatus:
        """The status Rehabstöd calls ``rehabstod_id`` (``REKO_3`` → ``aktiv``); ValueError
        for an id it does not have."""
        try:
            return _BY_REHABSTOD_ID[rehabstod_id]
        except KeyError:
            raise ValueError(f"{rehabstod_id[:20]!r} is not a Rehabstöd REKO status") from None


REHABSTOD_IDS: dict[RekoStatus, str] = {
    RekoStatus.INGEN: "REKO_1",
    RekoStatus.KONTAKTAD: "REKO_2",
    RekoStatus.AKTIV: "REKO_3",
    RekoStatus.UPPFOLJNING: "REKO_4",
    RekoStatus.AVSLUTAD: "REKO_5",
    RekoStatus.AVBOJT: "REKO_6",
    RekoStatus.LAMNAS_UTAN_ATGARD: "REKO_7",
    RekoStatus.MEDICINSK_REHAB: "REKO_8",
}
"""Each REKO status's id in Rehabstöd (RekoStatusType), both ways with ``from_rehabstod_id``."""
_BY_REHABSTOD_ID = {rehabstod_id: status for status, rehabstod_id in REHABSTOD_IDS.items()}

_CLOSED_STATUSES = frozenset(
    {RekoStatus.AVSLUTAD, RekoStatus.AVBOJT, RekoStatus.LAMNAS_UTAN_ATGARD}
)


class CarePlanCategory(StrEnum):
    """What the plan is for (``reko-careplan-category``): the law covers returning to work and
    entering working life (contract 2)."""

    ATERGANG_I_ARBETE = "atergang-i-arbete"
    INTRADE_I_ARBETSLIVET = "intrade-i-arbetslivet"


class ConsentForm(StrEnum):
    """How consent was given (``reko-consent-form``): oral consent is enough."""

    MUNTLIGT = "muntligt"
    SKRIFTLIGT = "skriftligt"


class ConsentChangeKind(StrEnum):
    """What happened to a consent at one point of its history."""

    GIVEN = "given"
    ACTORS_CHANGED = "actors-changed"
    REVOKED = "revoked"


class ActivityStatus(StrEnum):
    """Status of a journaled activity (the FHIR Procedure statuses the contract allows)."""

    PREPARATION = "preparation"
    IN_PROGRESS = "in-progress"
    NOT_DONE = "not-done"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"


SICK_LEAVE_DEGREES = (25, 50, 75, 100)
"""The only sick-leave degrees (sjukskrivningsgrad) Swedish sickness benefit knows, in percent."""
