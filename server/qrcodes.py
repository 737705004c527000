"""QR codes as images (qrcode): the citizen's payment code (rule U5), a till's pairing code."""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor

import qrcode
import qrcode.image.svg
from qrcode.image.base import BaseImage

# Rendering takes 20-30 ms of CPU: on the event loop, eight citizens asking at once held every
# till's quote up for seconds (issue 9, item 9). One thread of its own renders them in turn.
_RENDERING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qr-render")

# ISO/IEC 18004 asks for a quiet zone of 4 modules; with 2, scanners misread codes shown on a
# phone's edge-to-edge screen (issue 11 item 2). Error correction M (15 %): the citizen's
# 52-character code is then version 3 (29 x 29 modules), read in one pass.
QUIET_ZONE = 4
ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M


def qr_matrix(text: str) -> qrcode.QRCode[BaseImage]:
    """``text`` laid out as a QR code of the smallest version that holds it."""
    code: qrcode.QRCode[BaseImage] = qrcode.QRCode(
        error_correction=ERROR_CORRECTION, border=QUIET_ZONE
    )
    code.add_data(text)
    code.make(fit=True)
    return code


def qr_png(text: str) -> bytes:
    out = io.BytesIO()
    qr_matrix(text).make_image().save(out)
    return out.getvalue()


def qr_svg(text: str) -> bytes:
    out = io.BytesIO()
    qr_matrix(text).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(out)
    return out.getvalue()


async def render(fmt: str, text: str) -> bytes:
    """``text`` as a PNG or SVG image (``fmt``), rendered off the event loop."""
    draw = qr_png if fmt == "png" else qr_svg
    return await asyncio.get_running_loop().run_in_executor(_RENDERING, draw, text)
