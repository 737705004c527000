"""Rule C1, issue 13: one list of campaign files serves both kinds, told apart by each file's
``kind`` key; ids are unique across the kinds (they share the ledger's campaigns table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.campaign_files import (
    bundled_campaign_files,
    bundled_campaigns_dir,
    bundled_ticket_campaigns_dir,
    load_programme_files,
)
from shared.errors import CampaignConfigInvalid


def test_the_bundled_files_load_as_vouchers_and_house_tickets_side_by_side() -> None:
    vouchers, tickets = load_programme_files(bundled_campaign_files())
    assert set(vouchers) == {"liaocheng-2024", "liaocheng-demo"}
    assert set(tickets) == {"shangqiu-2025", "suining-chuanshan-2025"}


def test_a_ticket_programme_and_a_voucher_campaign_of_one_id_are_refused(tmp_path: Path) -> None:
    text = (bundled_ticket_campaigns_dir() / "shangqiu-2025.toml").read_text(encoding="utf-8")
    voucher = (bundled_campaigns_dir() / "liaocheng-2024.toml").read_text(encoding="utf-8")
    (tmp_path / "a.toml").write_text(voucher.replace('"liaocheng-2024"', '"shared-id"'), "utf-8")
    (tmp_path / "b.toml").write_text(text.replace('"shangqiu-2025"', '"shared-id"'), "utf-8")
    with pytest.raises(CampaignConfigInvalid) as refused:
        load_programme_files([tmp_path / "a.toml", tmp_path / "b.toml"])
    assert refused.value.details["problems"] == [{"path": "id", "problem": "duplicate campaign id"}]
