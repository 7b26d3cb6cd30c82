"""Care-unit partitions: every stored resource lives in exactly one, decided when it is created.

Patientdatalagen lets a care unit see only what is in its own care. Modelled on HAPI FHIR's
partitioning (https://hapifhir.io/hapi-fhir/docs/server_jpa_partitioning/partitioning.html):
the partition is a column of every stored row, named by the care unit's HSA-id; a caller's reads
and searches carry the partitions it may see *inside* the query (results and totals alike), and
a conditional create, update or delete matches only inside the partition it writes to. The same
personnummer at two units is therefore two Patient resources, one per unit, and nothing one unit
writes can attach to, block or change another unit's data.

The directory (Organization, PractitionerRole) is partitioned the same way, by the unit that
wrote it, but read across partitions: staff and organisations are not patient data.
"""

from __future__ import annotations

from dataclasses import dataclass

DIRECTORY = frozenset({"Organization", "PractitionerRole"})
"""Types every caller may read and search across partitions; writes stay in the own one."""

UNASSIGNED = ""
"""The partition of in-process writers (pull, tests) and of data from before partitions."""


@dataclass(frozen=True, slots=True)
class Partitions:
    """What one caller reads (``visible``, None: every partition) and writes (``own``, None:
    nothing). Conditions of writes match in ``own`` only."""

    own: str | None
    visible: frozenset[str] | None

    def reads(self, resource_type: str) -> frozenset[str] | None:
        """The partitions a read or search of ``resource_type`` looks in (None: all)."""
        return None if resource_type in DIRECTORY else self.visible

    @classmethod
    def of_unit(cls, unit: str) -> Partitions:
        return cls(unit, frozenset({unit}))


EVERY = Partitions(UNASSIGNED, None)
"""Reads everything, writes to the unassigned partition: for callers inside the process."""
