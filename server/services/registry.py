"""The certificate registry import (rule E3): the office's CSV, all accepted rows written in one
transaction (or none, on a dry run), audited by the file's hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from server.auth import Principal, Role
from server.db import admin as audit_db
from server.db import registry as db
from server.services.ports import Ports
from server.services.scope import district_codes, district_name
from shared.registry import Reject, parse_registry_csv


@dataclass(frozen=True, slots=True)
class ImportFile:
    data: bytes  # UTF-8 or GBK
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Imported:
    inserted: int
    updated: int
    unchanged: int
    rejects: list[Reject]  # by line
    encoding: str
    dry_run: bool


async def import_file(ports: Ports, me: Principal, cmd: ImportFile) -> Imported:
    """Rule E3: import the office's CSV; rejects come back with line and every reason found in
    the row, in English and Chinese. A district operator imports records of their own district
    only (rule X2). A dry run says what would happen and writes nothing."""
    now = ports.clock()
    parsed = parse_registry_csv(
        cmd.data,
        districts=district_codes(ports.campaigns),
        id_hash_key=ports.settings.id_hash_key,
        today=now.astimezone(ports.tz).date(),
    )
    rows = list(parsed.rows)
    rejects = list(parsed.rejects)
    if me.role is Role.DISTRICT_OPERATOR:
        rejects += [
            Reject.one(
                r.line,
                r.cert_no,
                f"district {r.district} is not yours",
                f"{district_name(ports.campaigns, r.district)}不是您所辖的区",
            )
            for r in rows
            if r.district != me.district
        ]
        rows = [r for r in rows if r.district == me.district]
    async with ports.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            summary = await db.import_rows(conn, rows)
            rejects += summary.rejects
            done = Imported(
                inserted=summary.inserted,
                updated=summary.updated,
                unchanged=summary.unchanged,
                rejects=sorted(rejects, key=lambda r: r.line),
                encoding=parsed.encoding,
                dry_run=cmd.dry_run,
            )
            if cmd.dry_run:
                await transaction.rollback()  # says what would happen, writes nothing
                return done
            await audit_db.audit(
                conn,
                actor=me.actor,
                action="registry.import",
                subject=f"file:sha256:{hashlib.sha256(cmd.data).hexdigest()}",
                details={
                    "inserted": done.inserted,
                    "updated": done.updated,
                    "unchanged": done.unchanged,
                    "rejected": len(done.rejects),
                    "encoding": done.encoding,
                },
            )
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()
    return done
