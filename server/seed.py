"""Put known people, certificates, merchants and terminals in the ledger: for the demo and tests.

Operators do this with the registry import and ``voucherctl`` (a later issue); these helpers
write the same rows directly, hashing ID numbers exactly as the server does (rule X3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from server.auth import hash_password, hash_terminal_secret, new_terminal_secret
from server.db import Conn, parties
from shared.idnumber import hash_id_number, mask_id_number, validate_id_number


@dataclass(frozen=True, slots=True)
class TerminalCredential:
    terminal_id: int
    merchant_id: int
    secret: str


async def certificate(
    conn: Conn,
    *,
    cert_no: str,
    district: str,
    owners: list[str],
    id_hash_key: bytes,
    issued_on: date,
    invoice_excl_vat_fen: int,
    tax_relief_fen: int = 0,
    property_type: str = "housing",
    new_build: bool = True,
) -> int:
    """An imported registration record (rule E3) with its owners' hashed ID numbers."""
    certificate_id = await conn.fetchval(
        """
        INSERT INTO certificates (cert_no, district, property_type, new_build,
                                  invoice_excl_vat_fen, tax_relief_fen, issued_on)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
        """,
        cert_no,
        district,
        property_type,
        new_build,
        invoice_excl_vat_fen,
        tax_relief_fen,
        issued_on,
    )
    for owner in owners:
        number = validate_id_number(owner, date.max)  # rule E1
        await conn.execute(
            "INSERT INTO certificate_owners (certificate_id, id_hash, id_masked) "
            "VALUES ($1, $2, $3)",
            certificate_id,
            hash_id_number(number, id_hash_key),
            mask_id_number(number),
        )
    return int(certificate_id)


async def merchant_with_terminal(
    conn: Conn,
    *,
    name: str,
    district: str,
    admitted: bool = True,
    permitted: bool = True,
    label: str = "收银台 1",
) -> TerminalCredential:
    merchant_id = await parties.create_merchant(
        conn, name=name, district=district, admitted=admitted, permitted=permitted
    )
    return await terminal(conn, merchant_id=merchant_id, label=label)


async def terminal(conn: Conn, *, merchant_id: int, label: str) -> TerminalCredential:
    """A terminal and its credential, shown once: only its hash is stored (rule X2)."""
    secret = new_terminal_secret()
    terminal_id = await parties.create_terminal(
        conn, merchant_id=merchant_id, label=label, credential_hash=hash_terminal_secret(secret)
    )
    return TerminalCredential(terminal_id, merchant_id, secret)


async def account(
    conn: Conn,
    *,
    username: str,
    password: str,
    role: str,
    district: str | None = None,
    merchant_id: int | None = None,
) -> int:
    return await parties.create_account(
        conn,
        username=username,
        role=role,
        credential_hash=hash_password(password),
        district=district,
        merchant_id=merchant_id,
    )
