"""SQL of the certificate registry import (rule E3): one transaction per file, idempotent.

A row whose certificate is already recorded with the same content is unchanged; with other
content it is updated, unless the certificate was claimed — then the row is rejected, since
vouchers were issued on what the record said.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from server.db import Conn
from shared.registry import RegistryRow, Reject


@dataclass(slots=True)
class ImportSummary:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[Reject] = field(default_factory=list)


def _same(row: RegistryRow, existing: asyncpg.Record) -> bool:
    return (
        existing["district"] == row.district
        and existing["property_type"] == str(row.property_type)
        and existing["new_build"] == row.new_build
        and existing["invoice_excl_vat_fen"] == row.invoice_excl_vat_fen
        and existing["tax_relief_fen"] == row.tax_relief_fen
        and existing["issued_on"] == row.issued_on
        and {bytes(h) for h in existing["owners"]} == {o.id_hash for o in row.owners}
    )


async def import_rows(conn: Conn, rows: Sequence[RegistryRow]) -> ImportSummary:
    """Write the rows in the caller's transaction; return what happened to each."""
    summary = ImportSummary()
    found = await conn.fetch(
        """
        SELECT c.id, c.cert_no, c.district, c.property_type, c.new_build,
               c.invoice_excl_vat_fen, c.tax_relief_fen, c.issued_on,
               array(SELECT o.id_hash FROM certificate_owners o WHERE o.certificate_id = c.id)
                   AS owners,
               EXISTS (SELECT 1 FROM claims k WHERE k.certificate_id = c.id) AS claimed
          FROM certificates c WHERE c.cert_no = ANY($1::text[])
           FOR UPDATE OF c
        """,
        [r.cert_no for r in rows],
    )
    existing = {rec["cert_no"]: rec for rec in found}
    fresh: list[RegistryRow] = []
    changed: list[tuple[int, RegistryRow]] = []
    for row in rows:
        old = existing.get(row.cert_no)
        if old is None:
            fresh.append(row)
        elif _same(row, old):
            summary.unchanged += 1
        elif old["claimed"]:
            summary.rejects.append(
                Reject.one(
                    row.line,
                    row.cert_no,
                    "differs from the record already claimed on",
                    "与已领取消费券的登记记录不一致",
                )
            )
        else:
            changed.append((int(old["id"]), row))
    if fresh:
        ids = await conn.fetch(
            """
            INSERT INTO certificates (cert_no, district, property_type, new_build,
                                      invoice_excl_vat_fen, tax_relief_fen, issued_on)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bigint[],
                                 $6::bigint[], $7::date[])
            RETURNING id, cert_no
            """,
            *_columns(fresh),
        )
        by_no = {rec["cert_no"]: rec["id"] for rec in ids}
        await _owners(conn, [(by_no[r.cert_no], r) for r in fresh])
        summary.inserted = len(fresh)
    if changed:
        await conn.execute(
            """
            UPDATE certificates c SET district = u.district, property_type = u.property_type,
                   new_build = u.new_build, invoice_excl_vat_fen = u.invoice,
                   tax_relief_fen = u.relief, issued_on = u.issued_on, imported_at = now()
              FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bool[], $5::bigint[],
                          $6::bigint[], $7::date[])
                   AS u(id, district, property_type, new_build, invoice, relief, issued_on)
             WHERE c.id = u.id
            """,
            [cid for cid, _ in changed],
            *_columns([r for _, r in changed])[1:],
        )
        await conn.execute(
            "DELETE FROM certificate_owners WHERE certificate_id = ANY($1::bigint[])",
            [cid for cid, _ in changed],
        )
        await _owners(conn, changed)
        summary.updated = len(changed)
    return summary


def _columns(rows: Sequence[RegistryRow]) -> list[list[object]]:
    return [
        [r.cert_no for r in rows],
        [r.district for r in rows],
        [str(r.property_type) for r in rows],
        [r.new_build for r in rows],
        [r.invoice_excl_vat_fen for r in rows],
        [r.tax_relief_fen for r in rows],
        [r.issued_on for r in rows],
    ]


async def _owners(conn: Conn, rows: Sequence[tuple[int, RegistryRow]]) -> None:
    pairs = [(cid, owner) for cid, row in rows for owner in row.owners]
    await conn.execute(
        """
        INSERT INTO certificate_owners (certificate_id, id_hash, id_masked)
        SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::text[])
        """,
        [cid for cid, _ in pairs],
        [o.id_hash for _, o in pairs],
        [o.id_masked for _, o in pairs],
    )
