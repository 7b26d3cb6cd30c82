"""The repository on SQL: SQLite (embedded default) and PostgreSQL, one implementation.

Every write is one database transaction: the version row, the current row and the search
index rows commit together. SQLite runs in WAL mode and takes the write lock at ``BEGIN``
(``BEGIN IMMEDIATE``), so concurrent writers queue instead of failing half-way; PostgreSQL
locks the current row (``FOR UPDATE``) before it writes a new version.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import and_, delete, event, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from reko_fhir.outcomes import IssueCode, OperationOutcomeError, error
from reko_fhir.store import index
from reko_fhir.store.repository import Json, Search, Stored
from reko_fhir.store.schema import (
    conditional_create,
    reference_index,
    resource_current,
    resource_version,
    token_index,
)

SEARCHABLE = ("_id", "identifier", "status", "code", "category", "subject", "patient")


def _not_found(resource_type: str, resource_id: str) -> OperationOutcomeError:
    message = f"{resource_type}/{resource_id} is not known"
    return OperationOutcomeError([error(IssueCode.NOT_FOUND, message, resource_type)])


def _gone(resource_type: str, resource_id: str) -> OperationOutcomeError:
    message = f"{resource_type}/{resource_id} has been deleted"
    return OperationOutcomeError([error(IssueCode.DELETED, message, resource_type)])


def run_migrations(connection: Connection) -> None:
    """Bring the schema to the newest revision (alembic), on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(files("reko_fhir.store").joinpath("migrations")))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class SqlRepository:
    """The FHIR store on an async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @classmethod
    async def open(cls, url: str, **engine_options: Any) -> SqlRepository:
        """Connect, migrate, and return the repository."""
        engine = create_async_engine(url, **engine_options)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        async with engine.begin() as conn:
            await conn.run_sync(run_migrations)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- reads -----------------------------------------------------------------------------
    async def read(self, resource_type: str, resource_id: str) -> Stored:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(resource_current).where(
                        resource_current.c.type == resource_type,
                        resource_current.c.id == resource_id,
                    )
                )
            ).first()
        if row is None:
            raise _not_found(resource_type, resource_id)
        if row.deleted:
            raise _gone(resource_type, resource_id)
        return _stored(row)

    async def vread(self, resource_type: str, resource_id: str, version: int) -> Stored:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(resource_version).where(
                        resource_version.c.type == resource_type,
                        resource_version.c.id == resource_id,
                        resource_version.c.version == version,
                    )
                )
            ).first()
        if row is None:
            raise _not_found(resource_type, f"{resource_id}/_history/{version}")
        if row.deleted:
            raise _gone(resource_type, f"{resource_id}/_history/{version}")
        return _stored(row)

    async def history(self, resource_type: str, resource_id: str | None = None) -> list[Stored]:
        query = select(resource_version).where(resource_version.c.type == resource_type)
        if resource_id is not None:
            query = query.where(resource_version.c.id == resource_id)
        query = query.order_by(
            resource_version.c.last_updated.desc(), resource_version.c.version.desc()
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_stored(row) for row in rows]

    async def search(self, resource_type: str, search: Search) -> list[Stored]:
        async with self.engine.connect() as conn:
            ids = await self._matching(conn, resource_type, search)
            if not ids:
                return []
            rows = (
                await conn.execute(
                    select(resource_current)
                    .where(
                        resource_current.c.type == resource_type,
                        resource_current.c.id.in_(ids[: search.count]),
                    )
                    .order_by(resource_current.c.last_updated.desc(), resource_current.c.id)
                )
            ).all()
        return [_stored(row) for row in rows]

    async def count(self, resource_type: str | None = None) -> int:
        query = select(func.count()).select_from(resource_version)
        if resource_type:
            query = query.where(resource_version.c.type == resource_type)
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def _matching(
        self, conn: AsyncConnection, resource_type: str, search: Search
    ) -> list[str]:
        """Ids of current, not deleted resources matching every parameter."""
        query = select(resource_current.c.id).where(
            resource_current.c.type == resource_type, resource_current.c.deleted.is_(False)
        )
        for name, value in search.params:
            if name not in SEARCHABLE:
                message = f"the search parameter '{name}' is not supported for {resource_type}"
                raise OperationOutcomeError([error(IssueCode.NOT_SUPPORTED, message, name)])
            query = query.where(resource_current.c.id.in_(_condition(resource_type, name, value)))
        return [row.id for row in (await conn.execute(query.limit(1000))).all()]

    # -- writes ----------------------------------------------------------------------------
    async def create(self, resource: Json, *, if_none_exist: Search | None = None) -> Stored:
        resource_type = str(resource["resourceType"])
        if if_none_exist is not None:
            existing = await self._one_match(resource_type, if_none_exist)
            if existing is not None:
                return existing
        resource_id = str(uuid.uuid4())
        try:
            async with self.engine.begin() as conn:
                stored = await self._write(conn, resource_type, resource_id, resource, 1)
                if if_none_exist is not None:
                    # The constraint, not the search above, decides who wins a race.
                    await conn.execute(
                        insert(conditional_create).values(
                            type=resource_type, query=if_none_exist.canonical(), id=resource_id
                        )
                    )
        except IntegrityError:
            if if_none_exist is None:
                raise
            winner = await self._one_match(resource_type, if_none_exist) or await self._owner(
                resource_type, if_none_exist
            )
            if winner is None:
                raise
            return winner
        return Stored(stored.resource, stored.version, stored.last_updated, created=True)

    async def _owner(self, resource_type: str, condition: Search) -> Stored | None:
        async with self.engine.connect() as conn:
            owner = (
                await conn.execute(
                    select(conditional_create.c.id).where(
                        conditional_create.c.type == resource_type,
                        conditional_create.c.query == condition.canonical(),
                    )
                )
            ).scalar_one_or_none()
        return None if owner is None else await self.read(resource_type, owner)

    async def _one_match(self, resource_type: str, condition: Search) -> Stored | None:
        async with self.engine.connect() as conn:
            ids = await self._matching(conn, resource_type, condition)
        if len(ids) > 1:
            message = f"{len(ids)} {resource_type} resources match {condition.canonical()}"
            raise OperationOutcomeError([error(IssueCode.MULTIPLE_MATCHES, message, resource_type)])
        return await self.read(resource_type, ids[0]) if ids else None

    async def update(self, resource: Json, *, if_match: int | None = None) -> Stored:
        resource_type, resource_id = str(resource["resourceType"]), resource.get("id")
        if not isinstance(resource_id, str) or not resource_id:
            message = "an update names the resource's id"
            raise OperationOutcomeError([error(IssueCode.REQUIRED, message, f"{resource_type}.id")])
        try:
            async with self.engine.begin() as conn:
                current = await self._lock_current(conn, resource_type, resource_id)
                version = 1 if current is None else current.version + 1
                if if_match is not None and (current is None or current.version != if_match):
                    have = "none" if current is None else str(current.version)
                    message = f"If-Match version {if_match} is stale: the current version is {have}"
                    raise OperationOutcomeError(
                        [error(IssueCode.CONFLICT, message, resource_type)], status=412
                    )
                stored = await self._write(conn, resource_type, resource_id, resource, version)
        except IntegrityError:
            message = f"{resource_type}/{resource_id} was changed at the same time; send it again"
            raise OperationOutcomeError(
                [error(IssueCode.CONFLICT, message, resource_type)]
            ) from None
        return Stored(stored.resource, stored.version, stored.last_updated, created=current is None)

    async def conditional_update(self, resource: Json, condition: Search) -> Stored:
        resource_type = str(resource["resourceType"])
        existing = await self._one_match(resource_type, condition)
        if existing is None:
            created = await self.create(
                {k: v for k, v in resource.items() if k != "id"}, if_none_exist=condition
            )
            if created.created:
                return created
            existing = created  # another request created it first: update that one
        if resource.get("id") not in (None, existing.id):
            message = f"the resource's id {resource['id']} is not the matching {existing.id}"
            raise OperationOutcomeError([error(IssueCode.CONFLICT, message, f"{resource_type}.id")])
        return await self.update({**resource, "id": existing.id})

    async def delete(self, resource_type: str, resource_id: str) -> int | None:
        async with self.engine.begin() as conn:
            current = await self._lock_current(conn, resource_type, resource_id)
            if current is None or current.deleted:
                return None
            version: int = current.version + 1
            now = datetime.now(UTC)
            await conn.execute(
                insert(resource_version).values(
                    type=resource_type,
                    id=resource_id,
                    version=version,
                    last_updated=now,
                    deleted=True,
                    content=None,
                )
            )
            await conn.execute(
                update(resource_current)
                .where(
                    resource_current.c.type == resource_type, resource_current.c.id == resource_id
                )
                .values(version=version, last_updated=now, deleted=True, content=None)
            )
            await self._unindex(conn, resource_type, resource_id)
            await conn.execute(
                delete(conditional_create).where(
                    conditional_create.c.type == resource_type,
                    conditional_create.c.id == resource_id,
                )
            )
        return version

    async def _lock_current(
        self, conn: AsyncConnection, resource_type: str, resource_id: str
    ) -> Any:
        query = select(resource_current.c.version, resource_current.c.deleted).where(
            resource_current.c.type == resource_type, resource_current.c.id == resource_id
        )
        if not self.is_sqlite:
            query = query.with_for_update()
        return (await conn.execute(query)).first()

    async def _write(
        self,
        conn: AsyncConnection,
        resource_type: str,
        resource_id: str,
        resource: Json,
        version: int,
    ) -> Stored:
        now = datetime.now(UTC)
        meta = {
            **(resource.get("meta") or {}),
            "versionId": str(version),
            "lastUpdated": _instant(now),
        }
        content = {**resource, "id": resource_id, "meta": meta}
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        row = {
            "type": resource_type,
            "id": resource_id,
            "version": version,
            "last_updated": now,
            "deleted": False,
            "content": text,
        }
        await conn.execute(insert(resource_version).values(**row))
        if version == 1:
            await conn.execute(insert(resource_current).values(**row))
        else:
            await conn.execute(
                update(resource_current)
                .where(
                    resource_current.c.type == resource_type, resource_current.c.id == resource_id
                )
                .values(version=version, last_updated=now, deleted=False, content=text)
            )
            await self._unindex(conn, resource_type, resource_id)
        tokens = [
            {"type": resource_type, "id": resource_id, "param": p, "system": s, "value": v}
            for p, s, v in index.tokens(content)
        ]
        references = [
            {"type": resource_type, "id": resource_id, "param": p, "target": t}
            for p, t in index.references(content)
        ]
        if tokens:
            await conn.execute(insert(token_index), tokens)
        if references:
            await conn.execute(insert(reference_index), references)
        return Stored(content, version, now)

    @staticmethod
    async def _unindex(conn: AsyncConnection, resource_type: str, resource_id: str) -> None:
        for table in (token_index, reference_index):
            await conn.execute(
                delete(table).where(table.c.type == resource_type, table.c.id == resource_id)
            )


def _condition(resource_type: str, name: str, value: str) -> Any:
    """A sub-select of ids for one search parameter (https://hl7.org/fhir/R4/search.html)."""
    if name == "_id":
        return select(resource_current.c.id).where(
            resource_current.c.type == resource_type, resource_current.c.id.in_(value.split(","))
        )
    if name in ("subject", "patient"):
        targets = [v if "/" in v else f"Patient/{v}" for v in value.split(",")]
        return select(reference_index.c.id).where(
            reference_index.c.type == resource_type,
            reference_index.c.param == name,
            reference_index.c.target.in_(targets),
        )
    system, bar, code = value.rpartition("|")
    match = [
        token_index.c.type == resource_type,
        token_index.c.param == name,
        token_index.c.value == code,
    ]
    if bar:
        match.append(token_index.c.system == system)
    return select(token_index.c.id).where(and_(*match))


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stored(row: Any) -> Stored:
    resource: Json = json.loads(row.content)
    last_updated = (
        row.last_updated if row.last_updated.tzinfo else row.last_updated.replace(tzinfo=UTC)
    )
    return Stored(resource, row.version, last_updated)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL for readers beside a writer; BEGIN IMMEDIATE so writers queue (busy timeout 30 s)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
