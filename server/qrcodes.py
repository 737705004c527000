"""QR codes as images (qrcode): the citizen's payment code (rule U5), a till's pairing code."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg


def qr_png(text: str) -> bytes:
    out = io.BytesIO()
    qrcode.make(text, border=2).save(out)
    return out.getvalue()


def qr_svg(text: str) -> bytes:
    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2).save(out)
    return out.getvalue()
