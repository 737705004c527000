"""Rule E3 over HTTP: import the office's CSV, then claim against what was imported."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import World, new_id_number
from tests.e2e.test_till import error_code

HEADER = "不动产权证号,所在区,房屋类型,是否增量房,不含税价款,减免税价款,登簿日期,权利人身份证号\n"


async def operator(world: World, role: str, district: str | None = None) -> dict[str, str]:
    return await world.staff(role, district=district)


async def upload(
    world: World, headers: dict[str, str], text: str, *, encoding: str = "utf-8", **query: str
) -> Any:
    return await world.client.post(
        "/v1/registry/imports",
        data=text.encode(encoding),
        params=query,
        headers={**headers, "Content-Type": "text/csv"},
    )


def cert() -> str:
    return f"鲁(2024)聊城市不动产权第{uuid.uuid4().hex[:12]}号"


async def count_certificates(world: World, numbers: list[str]) -> int:
    async with world.pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM certificates WHERE cert_no = ANY($1::text[])", numbers
            )
        )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
async def test_an_imported_certificate_can_be_claimed_by_its_owner(
    world: World, encoding: str
) -> None:
    city = await operator(world, "city_operator")
    person = await world.citizen()
    number = cert()
    text = (
        HEADER + f"{number},东昌府区,住宅,是,1200000.00,300000.00,2024-09-01,{person.id_number}\n"
    )
    r = await upload(world, city, text, encoding=encoding)
    assert r.status == 201, await r.text()
    body = await r.json()
    assert (body["inserted"], body["rejected"]) == (1, 0)
    r = await world.client.post(
        "/v1/claims", json={"certificate_no": number}, headers=person.headers
    )
    assert r.status == 201
    assert (await r.json())["voucher_count"] == 36  # rule A3: base 900,000 at 40 bp


async def test_bad_rows_are_listed_and_good_rows_imported_in_one_go(world: World) -> None:
    city = await operator(world, "city_operator")
    good, bad = cert(), cert()
    owner = new_id_number()
    text = (
        HEADER
        + f"{good},高新区,非住宅,是,350000,0,2024-09-02,{owner}\n"
        + f"{bad},高新区,非住宅,是,350000,0,2024-09-02,371502198001020010\n"
    )
    r = await upload(world, city, text)
    body = await r.json()
    assert (body["inserted"], body["rejected"]) == (1, 1)
    assert body["rejects"][0]["line"] == 3
    assert "ID number" in body["rejects"][0]["reason"]
    assert await count_certificates(world, [good, bad]) == 1


async def test_re_importing_a_file_changes_nothing(world: World) -> None:
    city = await operator(world, "city_operator")
    numbers = [cert() for _ in range(3)]
    text = HEADER + "".join(
        f"{n},经开区,住宅,是,800000,0,2024-09-03,{new_id_number()}\n" for n in numbers
    )
    first = await (await upload(world, city, text)).json()
    again = await (await upload(world, city, text)).json()
    assert first["inserted"] == 3
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert await count_certificates(world, numbers) == 3


async def test_a_claimed_certificate_cannot_be_changed_by_a_re_import(world: World) -> None:
    city = await operator(world, "city_operator")
    person = await world.citizen()
    number = cert()
    row = f"{number},东昌府区,住宅,是,{{price}},0,2024-09-01,{person.id_number}\n"
    await upload(world, city, HEADER + row.format(price="1200000"))
    assert (
        await world.client.post(
            "/v1/claims", json={"certificate_no": number}, headers=person.headers
        )
    ).status == 201
    body = await (await upload(world, city, HEADER + row.format(price="2400000"))).json()
    assert body["updated"] == 0
    assert "claimed" in body["rejects"][0]["reason"]


async def test_an_unclaimed_certificate_is_updated_by_a_corrected_file(world: World) -> None:
    city = await operator(world, "city_operator")
    number = cert()
    row = f"{number},东昌府区,住宅,是,{{price}},0,2024-09-01,{new_id_number()}\n"
    await upload(world, city, HEADER + row.format(price="1200000"))
    body = await (await upload(world, city, HEADER + row.format(price="1300000"))).json()
    assert body["updated"] == 1
    async with world.pool.acquire() as conn:
        price = await conn.fetchval(
            "SELECT invoice_excl_vat_fen FROM certificates WHERE cert_no = $1", number
        )
    assert price == 130_000_000


async def test_a_dry_run_writes_nothing(world: World) -> None:
    city = await operator(world, "city_operator")
    number = cert()
    text = HEADER + f"{number},度假区,住宅,是,900000,0,2024-09-01,{new_id_number()}\n"
    r = await upload(world, city, text, dry_run="true")
    assert r.status == 200
    assert (await r.json())["inserted"] == 1
    assert await count_certificates(world, [number]) == 0


async def test_a_district_operator_imports_only_their_district(world: World) -> None:
    # rule X2
    district_op = await operator(world, "district_operator", district="gaoxin")
    mine, theirs = cert(), cert()
    text = (
        HEADER
        + f"{mine},高新区,住宅,是,900000,0,2024-09-01,{new_id_number()}\n"
        + f"{theirs},东昌府区,住宅,是,900000,0,2024-09-01,{new_id_number()}\n"
    )
    body = await (await upload(world, district_op, text)).json()
    assert body["inserted"] == 1
    assert body["rejects"] == [
        {
            "line": 3,
            "cert_no": theirs,
            "reason": "district dongchangfu is not yours",
            "reasons": [
                {
                    "message": "district dongchangfu is not yours",
                    "message_zh": "东昌府区不是您所辖的区",  # issue 10: by its name, in Chinese
                }
            ],
        }
    ]


async def test_the_import_is_audited(world: World) -> None:
    city = await operator(world, "city_operator")
    text = HEADER + f"{cert()},东昌府区,住宅,是,900000,0,2024-09-01,{new_id_number()}\n"
    await upload(world, city, text)
    async with world.pool.acquire() as conn:
        entry = await conn.fetchrow(
            "SELECT actor, details FROM audit_log WHERE action = 'registry.import' "
            "ORDER BY id DESC LIMIT 1"
        )
    assert entry is not None
    assert entry["actor"].startswith("city_operator:")


async def test_a_file_without_the_needed_columns_is_refused(world: World) -> None:
    city = await operator(world, "city_operator")
    r = await upload(world, city, "cert_no,district\nX,东昌府区\n")
    assert r.status == 400
    assert await error_code(r) == "invalid_request"


async def test_cashiers_cannot_import(world: World) -> None:
    till = await world.till()
    r = await upload(world, till.headers, HEADER)
    assert r.status == 403
