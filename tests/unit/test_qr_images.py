"""The citizen's code as an image (issue 11 item 2): small enough for a cashier's scanner to
read in one pass (QR version 4 or less at error correction M), with the quiet zone of 4
modules ISO/IEC 18004 asks for; and the Accept header that chooses the image."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from server.qrcodes import QUIET_ZONE, qr_matrix, qr_png
from server.web import preferred_media
from shared.tokens import QrKey, issue_qr_token

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("holder", [1, 4_200_017, 2**64 - 1])
def test_a_citizens_code_fits_qr_version_4_or_less_at_error_correction_m(holder: int) -> None:
    code, _ = issue_qr_token(key=QrKey.generate("V"), holder=holder, now=NOW)
    matrix = qr_matrix(code)
    assert matrix.error_correction == ERROR_CORRECT_M
    assert matrix.version is not None and matrix.version <= 4
    assert matrix.version == 3  # 52 alphanumerics: 29 x 29 modules


def test_the_png_has_a_quiet_zone_of_four_white_modules() -> None:
    code, _ = issue_qr_token(key=QrKey.generate("V"), holder=7, now=NOW)
    matrix = qr_matrix(code)
    assert QUIET_ZONE == matrix.border == 4
    image = Image.open(io.BytesIO(qr_png(code))).convert("L")
    modules = matrix.modules_count + 2 * QUIET_ZONE
    assert image.size == (modules * matrix.box_size,) * 2
    zone = QUIET_ZONE * matrix.box_size
    width = image.size[0]
    edges = [
        image.crop(box)
        for box in ((0, 0, width, zone), (0, 0, zone, width), (width - zone, 0, width, width))
    ]
    assert all(edge.getextrema() == (255, 255) for edge in edges)  # white all round
    inside = image.crop((zone, zone, zone + matrix.box_size, zone + matrix.box_size))
    assert inside.getextrema() == (0, 0)  # the finder pattern starts right after it


OURS = ("application/json", "image/png", "image/svg+xml")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("image/png", "image/png"),
        ("IMAGE/PNG", "image/png"),
        ("image/svg+xml", "image/svg+xml"),
        ("image/*", "image/png"),
        ("image/*;q=0.5, image/svg+xml;q=0.9", "image/svg+xml"),
        ("image/png;q=0.2, application/json;q=0.8", "application/json"),
        ("*/*;q=0.1, image/png", "image/png"),
        ("image/png;q=0, */*", "application/json"),  # q=0: not acceptable
        ("image/png;q=abc, image/svg+xml", "image/svg+xml"),
        ("text/html", None),
        ("text/html, image/png;q=0", None),
    ],
)
def test_the_accept_header_chooses_among_what_is_offered(
    accept: str | None, chosen: str | None
) -> None:
    assert preferred_media(accept, OURS) == chosen
