"""A transaction's conditions matched at once, for :class:`reko_fhir.store.unit.Unit`.

A case Bundle has seventeen conditional entries (``identifier=system|code``): looked for one
by one, on the snapshot, again under the write lock and again amid the writes, they were
most of its statements (issue 15). Here every token condition is one query, a match the
snapshot read is kept while its id and version are current, and the unit is told what it
resolved, so that its creates and no-op updates need not look again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from reko_fhir.store.conditions import MATCH_TOKENS, content_matches, token_matches, token_of
from reko_fhir.store.pending import FlushingConnection
from reko_fhir.store.repository import Change, Json, Search, Stored


class ConditionsAtOnce:
    """The unit's methods for a whole transaction's conditions (see the module's text)."""

    conn: FlushingConnection  # the unit's: its reads send its held-back inserts first
    changes: list[Change]
    _unmatched: set[tuple[str, str]]

    def _own(self) -> str:
        raise NotImplementedError  # the unit's: the partition it writes to

    async def one_match(self, resource_type: str, condition: Search) -> Stored | None:
        raise NotImplementedError  # the unit's: one condition alone

    def _stored(self, row: Any) -> Stored:
        raise NotImplementedError  # the unit's: a resource_current row as Stored

    def _says_the_same(self, current: Stored, resource: Json) -> bool:
        raise NotImplementedError  # the unit's notion of a no-op update

    async def one_match_each(
        self, conditions: Sequence[tuple[str, Search]], known: Sequence[Stored | None] = ()
    ) -> list[Stored | None]:
        """:meth:`one_match` of each condition, in order (the first 400 or 412 is raised), the
        conditions of one token parameter in one query (a case Bundle's seventeen). A match
        whose id and version ``known`` holds at its place (read before, on a snapshot) is that
        Stored, not read again."""
        tokens = [token_of(condition) for _, condition in conditions]
        rows: Sequence[Any] = ()
        batched = False
        wanted = [(t, token) for (t, _), token in zip(conditions, tokens, strict=True) if token]
        if wanted:
            most = 2 * len(wanted) + 32  # room for the same value in another type or system
            params: dict[str, object] = {
                "types": sorted({t for t, _ in wanted}),
                "params": sorted({token[0] for _, token in wanted}),
                "values": sorted({token[2] for _, token in wanted}),
                "own": self._own(),
                "most": most,
            }
            rows = (await self.conn.execute(MATCH_TOKENS, params)).all()
            batched = len(rows) < most
        found: list[Stored | None] = []
        for i, ((resource_type, condition), token) in enumerate(
            zip(conditions, tokens, strict=True)
        ):
            if token is None or not batched:
                found.append(await self.one_match(resource_type, condition))
                continue
            matched = {
                row.id: row
                for row in rows
                if row.type == resource_type
                and token_matches(token, row.param, row.system, row.value)
            }
            if len(matched) > 1:  # the 412, with the count one_match gives it
                found.append(await self.one_match(resource_type, condition))
            elif not matched:
                self._unmatched.add((resource_type, condition.canonical()))
                found.append(None)
            else:
                row = next(iter(matched.values()))
                before = known[i] if i < len(known) else None
                same = before is not None and (before.id, before.version) == (row.id, row.version)
                found.append(before if same else self._stored(row))
        return found

    def still_unmatched(self, resource_type: str, condition: Search) -> None:
        """``condition`` matched nothing on this transaction (the caller resolved it): unless
        a resource the unit wrote since has a token row it names, it still matches nothing
        here, and a create under it need not look again. Other conditions are looked for."""
        token = token_of(condition)
        written = (
            c.resource for c in self.changes if c.resource_type == resource_type and c.resource
        )
        if token is not None and not any(content_matches(token, r) for r in written):
            self._unmatched.add((resource_type, condition.canonical()))

    def unchanged(self, resource: Json, current: Stored) -> Stored | None:
        """What :meth:`update` answers when ``resource`` says what ``current`` says — a match
        read on this transaction, not written since (its id and version are still the ones
        read): the no-op, without reading the row again. None for a change: the update reads,
        locks and writes."""
        resource_type = str(resource.get("resourceType"))
        rewritten = any(
            c.resource_type == resource_type and c.resource_id == current.id for c in self.changes
        )
        if rewritten or resource.get("id") != current.id or current.partition != self._own():
            return None
        if not self._says_the_same(current, resource):
            return None
        return replace(current, created=False, unchanged=True)
