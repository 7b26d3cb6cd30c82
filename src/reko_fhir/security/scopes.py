"""SMART on FHIR scopes, v2 (``system/CarePlan.rs``) and v1 (``user/Procedure.read``).

https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html. A scope grants some of
the permissions c(reate), r(ead), u(pdate), d(elete), s(earch) on one resource type or ``*``;
each FHIR interaction needs one of them. Unknown scopes (``openid``, ``launch``…) grant
nothing and are ignored, as the SMART spec asks of servers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# v2 permissions appear in this order; v1 read/write/* map onto them.
_V2 = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.(c?r?u?d?s?)(\?.*)?$")
_V1 = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.(read|write|\*)$")
_V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
ADMIN_SCOPE = "reko/admin"
"""Not SMART: the outbox's dead-letter routes, which hold payloads of every unit."""

# The permission each REST interaction needs (https://hl7.org/fhir/R4/http.html).
PERMISSION = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search-type": "s",
    "history-type": "s",
    "create": "c",
    "update": "u",
    "delete": "d",
    "validate": "c",
    "everything": "r",
}


@dataclass(frozen=True, slots=True)
class Grant:
    context: str  # patient | user | system
    resource_type: str  # a type or "*"
    permissions: frozenset[str]


@dataclass(frozen=True, slots=True)
class Scopes:
    grants: tuple[Grant, ...]
    admin: bool = False

    @classmethod
    def parse(cls, text: str) -> Scopes:
        grants = []
        for scope in text.split():
            if v2 := _V2.match(scope):
                # v2 scopes may narrow by query (``?category=…``); not honoured: refused as a
                # whole rather than granting more than the scope says.
                if v2.group(4) or not v2.group(3):
                    continue
                grants.append(Grant(v2.group(1), v2.group(2), frozenset(v2.group(3))))
            elif v1 := _V1.match(scope):
                permissions = frozenset(_V1_PERMISSIONS[v1.group(3)])
                grants.append(Grant(v1.group(1), v1.group(2), permissions))
        return cls(tuple(grants), ADMIN_SCOPE in text.split())

    def allows(self, resource_type: str, permission: str) -> bool:
        # patient/ scopes need a launch context (one patient) this service does not issue:
        # they grant nothing rather than every patient.
        return any(
            permission in g.permissions
            and g.resource_type in (resource_type, "*")
            and g.context != "patient"
            for g in self.grants
        )

    def allows_interaction(self, resource_type: str, interaction: str) -> bool:
        return self.allows(resource_type, PERMISSION[interaction])
