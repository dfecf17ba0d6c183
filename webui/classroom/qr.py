"""The join link as a QR code for the projector, drawn here (``segno``) without any network service."""

from __future__ import annotations

import io
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import segno


def join_url(page_url: str, code: str) -> str:
    """``page_url`` (the join page's full address) with ``code=CODE`` in its query, other parameters kept.

    Raises:
        ValueError: ``page_url`` is not an http(s) address.
    """
    parts = urlsplit(page_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the join page's address must start with http:// or https://, got {page_url!r}")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "code"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("code", code)]), fragment=""))


def join_qr_png(url: str, *, scale: int = 8, border: int = 4) -> bytes:
    """A QR code of ``url`` as PNG bytes: black modules on white, ``scale`` pixels per module.

    Error correction "M" (15 % of the code may be hidden or blurred, e.g. by a projector's glare) unless the
    URL only fits with less; segno raises for a URL longer than a QR code holds (about 2,300 characters).

    Args:
        url: what a phone's camera opens, usually :func:`join_url`'s result.
        scale: pixels per module; the picture is ``(modules + 2 * border) * scale`` pixels square.
        border: white modules around the code (the standard asks for 4, readers need some).
    """
    if scale < 1 or border < 0:
        raise ValueError(f"scale must be >= 1 and border >= 0, got {scale!r} and {border!r}")
    code = segno.make(url, error="m", micro=False)
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=scale, border=border, dark="#000", light="#fff")
    return buffer.getvalue()
