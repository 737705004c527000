"""QR codes as images (qrcode): the citizen's payment code (rule U5), a till's pairing code."""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor

import qrcode
import qrcode.image.svg

# Rendering takes 20-30 ms of CPU: on the event loop, eight citizens asking at once held every
# till's quote up for seconds (issue 9, item 9). One thread of its own renders them in turn.
_RENDERING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qr-render")


def qr_png(text: str) -> bytes:
    out = io.BytesIO()
    qrcode.make(text, border=2).save(out)
    return out.getvalue()


def qr_svg(text: str) -> bytes:
    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2).save(out)
    return out.getvalue()


async def render(fmt: str, text: str) -> bytes:
    """``text`` as a PNG or SVG image (``fmt``), rendered off the event loop."""
    draw = qr_png if fmt == "png" else qr_svg
    return await asyncio.get_running_loop().run_in_executor(_RENDERING, draw, text)
