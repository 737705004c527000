"""Claiming the vouchers of one property certificate (rules E2-E4, A1-A3, V1, V3, X1)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from server.db import claims as db
from server.db.claims import IssuedVoucher
from server.services.ports import Ports
from shared import rules
from shared.campaign import Campaign
from shared.errors import CertificateNotEligible, CertificateNotYours, Unauthenticated


@dataclass(frozen=True, slots=True)
class Claim:
    """A citizen (by their pseudonymous subject) claims the certificate numbered so."""

    citizen_subject: str
    certificate_no: str


@dataclass(frozen=True, slots=True)
class Claimed:
    claim_id: int
    campaign: Campaign
    certificate_no: str
    decision: rules.ClaimDecision
    vouchers: list[IssuedVoucher]


def issuing_campaign(campaigns: dict[str, Campaign], record: rules.CertificateRecord) -> Campaign:
    """Rule E2: the campaign issuing in the property's district whose certificate window holds
    the issue date, else the first one of the district."""
    issuing = [c for c in campaigns.values() if record.district in c.issuing_districts]
    issuing.sort(
        key=lambda c: not c.certificate_issued_from <= record.issued_on <= c.certificate_issued_to
    )
    if not issuing:
        raise CertificateNotEligible(
            "No campaign issues vouchers in the property's district.", reason="district"
        )  # rule E2
    return issuing[0]


async def claim(ports: Ports, cmd: Claim) -> Claimed:
    """Rules E2-E4, A1-A3, V1, V3, X1: claim the vouchers of one certificate, in one
    transaction.

    A stranger learns nothing about a certificate: whether the number is unknown or lists
    other owners, the answer is ``certificate_not_yours``, before any check that would tell
    the certificate exists (its campaign, district, or an earlier claim: rule E4's
    ``certificate_already_claimed`` is for its owners only).
    """
    now = ports.clock()
    async with ports.pool.acquire() as conn, conn.transaction():
        citizen = await db.citizen_by_subject(conn, uuid.UUID(cmd.citizen_subject))
        if citizen is None:
            raise Unauthenticated("sign in again")
        rules.check_participation(citizen.status == "revoked")  # rule X1
        cert = await db.certificate_for_claim(conn, cmd.certificate_no)
        if cert is None or citizen.id_hash not in cert.record.owner_hashes:
            raise CertificateNotYours(certificate_no=cmd.certificate_no)  # rule E3, one answer
        campaign = issuing_campaign(ports.campaigns, cert.record)
        decision = rules.check_claim(campaign, cert.record, citizen.id_hash, now, cert.claimed)
        claim_id, vouchers = await db.insert_claim(
            conn,
            campaign_id=campaign.id,
            certificate_id=cert.id,
            citizen_id=citizen.id,
            decision=decision,
            face_value_fen=campaign.face_value_fen,
            now=now,
        )  # rule E4: a concurrent owner who won makes this certificate_already_claimed
    return Claimed(claim_id, campaign, cert.record.cert_no, decision, vouchers)
