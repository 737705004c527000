"""Campaign files (rule C1), read at the edge: the server's start-up, the operators' tools and
the tests read a file here and hand its text to ``shared.campaign``, which only parses (the
functional core does no I/O)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol, TypeVar

import shared
from shared.campaign import Campaign, load_campaign_text
from shared.errors import CampaignConfigInvalid
from shared.ticket_campaign import TicketCampaign, load_ticket_campaign_text


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


C = TypeVar("C", bound=_HasId)

_CAMPAIGN_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}", re.ASCII)


def _read(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignConfigInvalid(
            f"{p}: cannot read campaign file: {exc}",
            source=str(p),
            problems=[{"path": "<file>", "problem": str(exc)}],
        ) from None


def load_campaign(path: str | Path) -> Campaign:
    """Rule C1: read, parse and validate one campaign TOML file (UTF-8)."""
    p = Path(path)
    return load_campaign_text(_read(p), source=str(p))


def load_ticket_campaign(path: str | Path) -> TicketCampaign:
    """Rules C1, T1-T14: read, parse and validate one house-ticket campaign file (UTF-8)."""
    p = Path(path)
    return load_ticket_campaign_text(_read(p), source=str(p))


def _by_id(paths: Iterable[str | Path], load: Callable[[Path], C]) -> dict[str, C]:
    out: dict[str, C] = {}
    origin: dict[str, Path] = {}
    for p in map(Path, paths):
        c = load(p)
        if c.id in out:
            raise CampaignConfigInvalid(
                f"{p}: id: campaign id {c.id!r} already defined in {origin[c.id]}",
                source=str(p),
                problems=[{"path": "id", "problem": "duplicate campaign id"}],
            )
        out[c.id] = c
        origin[c.id] = p
    return out


def load_campaign_files(paths: Iterable[str | Path]) -> dict[str, Campaign]:
    """Rule C1: the server's campaigns, one file each, by campaign id (ids must be unique)."""
    return _by_id(paths, load_campaign)


def load_ticket_campaign_files(paths: Iterable[str | Path]) -> dict[str, TicketCampaign]:
    """Rules C1, T1-T14: the server's house-ticket programmes, one file each, by id."""
    return _by_id(paths, load_ticket_campaign)


def bundled_campaigns_dir() -> Path:
    """The directory of campaign files shipped with the package (``shared/campaigns``)."""
    return Path(shared.__file__).resolve().parent / "campaigns"


def _bundled_file(directory: Path, campaign_id: str) -> Path:
    if not _CAMPAIGN_ID.fullmatch(campaign_id):
        raise CampaignConfigInvalid(f"{campaign_id!r}: not a campaign id", source=campaign_id)
    return directory / f"{campaign_id}.toml"


def load_bundled_campaign(campaign_id: str) -> Campaign:
    """Rule C1: load a shipped campaign by id, e.g. ``load_bundled_campaign("liaocheng-2024")``."""
    return load_campaign(_bundled_file(bundled_campaigns_dir(), campaign_id))


def bundled_ticket_campaigns_dir() -> Path:
    """The house-ticket programmes shipped with the package (``shared/campaigns/house_tickets``;
    a directory of their own, so the voucher campaigns' ``*.toml`` glob does not take them)."""
    return bundled_campaigns_dir() / "house_tickets"


def load_bundled_ticket_campaign(campaign_id: str) -> TicketCampaign:
    """Rules C1, T1-T14: a shipped house-ticket programme by id, e.g. ``"shangqiu-2025"``."""
    return load_ticket_campaign(_bundled_file(bundled_ticket_campaigns_dir(), campaign_id))
