"""QR codes as SVG (no Pillow needed) and PNG (pure-Python PNG writer)."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.pure
import qrcode.image.svg


def _make(data: str) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=10)
    qr.add_data(data)
    qr.make(fit=True)
    return qr


def svg(data: str, *, title: str = "QR") -> str:
    """An inline-able SVG of `data` (path-based, scales crisply on any screen or printer)."""
    image = _make(data).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    text = image.to_string(encoding="unicode")
    # Give screen readers a name for the picture.
    return text.replace("<svg ", f'<svg role="img" aria-label="{title}" ', 1)


def png(data: str) -> bytes:
    """A PNG of `data` made by qrcode's pure-Python writer (pypng)."""
    image = _make(data).make_image(image_factory=qrcode.image.pure.PyPNGImage)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()
