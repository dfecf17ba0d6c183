"""Turn a file a student gives us into a clean RGB picture, or refuse it with a sentence they understand.

:func:`load_image` is the one door through which pictures enter backbone-viz
(bytes -> ``load_image`` -> ``analyze``). In order, it:

1. refuses a file over ``max_bytes`` before reading it (``os.stat`` for a path, ``.size`` for an upload);
2. recognises PNG, JPEG, WebP, GIF, BMP and TIFF by their first bytes, and names anything else it can
   (a PDF, a ZIP, a web page, an SVG drawing, an iPhone HEIC photo, plain text...) in the refusal;
3. reads only the header and refuses a picture with more than ``max_pixels`` pixels before a single
   pixel is decoded, so a 100 kB "decompression bomb" PNG claiming 100 000 x 100 000 pixels costs nothing;
4. decodes, turning Pillow's "truncated" errors into a sentence about an incomplete upload;
5. applies the EXIF orientation and converts every mode (grayscale, palette, alpha, CMYK, 16-bit) to RGB.

Every step leaves process-wide state alone: Pillow's ``Image.MAX_IMAGE_PIXELS`` and
``ImageFile.LOAD_TRUNCATED_IMAGES`` and the ``warnings`` filters are never touched, because Streamlit
runs each session in its own thread and all of them share those globals. ``load_image`` is therefore
safe to call from several threads at once.

Formats: only the six above are decoded, even where Pillow could open more (ICO, PPM, PSD, JPEG 2000,
AVIF...). A short allow-list keeps the parsers a stranger's file can reach to the well-trodden ones.
A JPEG that Pillow reads as MPO (the multi-picture JPEG some phone cameras write) is a JPEG here too.
"""

from __future__ import annotations

import codecs
import io
import math
import os
import re
import stat
import struct
from typing import BinaryIO, Final, TypeAlias

import numpy as np
from PIL import Image, ImageOps

from backbone_viz.errors import ImageError
from backbone_viz.files.sizes import describe_size

__all__ = [
    "EXTENSIONS",
    "FORMAT_NAMES",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MIN_SIDE",
    "ImageSource",
    "load_image",
]

MAX_BYTES: Final[int] = 20 * 1024 * 1024
"""Largest file accepted, in bytes: 20 MB, the same as the web app's upload cap."""

MAX_PIXELS: Final[int] = 40_000_000
"""Largest picture accepted, in pixels (width x height): 40 megapixels.

Most phone photos are 12 megapixels and most camera photos 24; 40 lets those through with room to
spare, while a 48-50 megapixel "high resolution mode" photo or a 100 000-pixel-wide bomb is refused.
The cap bounds memory per session (a 40-megapixel RGB picture is 120 MB once decoded) and nothing is
lost by refusing more: the backbones look at a crop of about 224 x 224 pixels.
"""

MIN_SIDE: Final[int] = 16
"""Smallest width or height accepted, in pixels: below this a backbone's first stride-2 layers
already reduce the picture to a handful of values, and there is nothing left to look at."""

FORMAT_NAMES: Final[tuple[str, ...]] = ("PNG", "JPEG", "WebP", "GIF", "BMP", "TIFF")
"""The file formats :func:`load_image` reads, as a student would write them."""

EXTENSIONS: Final[tuple[str, ...]] = ("png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff")
"""File name extensions of :data:`FORMAT_NAMES`, e.g. for ``st.file_uploader(type=EXTENSIONS)``."""

ImageSource: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO
"""What :func:`load_image` reads: a path, the file's bytes, or a binary file object (an upload)."""

# Pillow's plugin name for each format we decode, with the name we show to a student.
_TITLES: Final[dict[str, str]] = {
    "PNG": "PNG",
    "JPEG": "JPEG",
    "WEBP": "WebP",
    "GIF": "GIF",
    "BMP": "BMP",
    "TIFF": "TIFF",
}
_TIFF_MAGIC: Final = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
# Sizes of the BMP info headers Pillow reads (BITMAPCOREHEADER ... BITMAPV5HEADER).
_BMP_HEADER_SIZES: Final = frozenset({12, 40, 52, 56, 64, 108, 124})

# What Pillow raises for a file that starts like a picture but whose data is cut off or broken.
_DECODE_ERRORS: Final = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)

# Alpha or palette-transparency modes that are flattened onto white.
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

# How many leading bytes are enough to tell what a file is.
_HEAD: Final = 4096

# Printable ASCII and the whitespace that text files use.
_TEXT_BYTES: Final = bytes(range(0x20, 0x7F)) + b"\t\n\r\f\v"

_PIXEL_COUNT = re.compile(r"\((\d+) pixels\)")

_ASK_FOR_A_PICTURE: Final = f"Upload a picture file: {', '.join(FORMAT_NAMES[:-1])} or {FORMAT_NAMES[-1]}."
_SAVE_AS_PNG_OR_JPEG: Final = "Open it in an image editor, save it as PNG or JPEG, and upload that."


def load_image(
    source: ImageSource,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    shrink_to: int | None = None,
) -> Image.Image:
    """Read a picture into an upright RGB image, or refuse it with an :class:`ImageError`.

    Args:
        source: a path (``str`` or ``os.PathLike``); the file's bytes (``bytes``, ``bytearray`` or
            ``memoryview``); or a binary file object such as Streamlit's ``UploadedFile`` or
            ``io.BytesIO``. A file object with ``getvalue()`` is read whole whatever its position (so
            a rerun can read the same upload again); any other is read from its current position.
        max_bytes: largest file accepted, in bytes.
        max_pixels: largest picture accepted, in pixels (width x height), checked from the header
            before anything is decoded.
        shrink_to: when given, a picture whose shorter side is more than twice this many pixels is
            shrunk (aspect kept) until that side lies between ``shrink_to`` and ``2 * shrink_to``;
            it never goes below ``shrink_to``. A JPEG is decoded at 1/2, 1/4 or 1/8 of its size
            straight away (the decoder's own scaling: a 12-megapixel photo decodes several times
            cheaper); what is still too large after that is averaged down in whole-pixel boxes
            (``Image.reduce``), never resampled. Give the largest size a model resizes to (every
            backbone resizes the shorter side to at most 256 px) and nothing the model sees is lost.

    Returns:
        A fully loaded ``PIL.Image.Image`` in mode ``"RGB"``, size ``(W, H)`` with
        ``MIN_SIDE <= W, H`` and ``W * H <= max_pixels``, rotated as its EXIF orientation says, and
        independent of the source (closing or deleting the file afterwards is fine). Transparent
        areas are composited onto white; 16-bit and float pictures are scaled to 0..255, not clipped.

    Raises:
        ImageError: the file is missing, empty, too large, not a picture in one of
            :data:`FORMAT_NAMES`, incomplete or damaged, has too many pixels, or is too small.
        TypeError: ``source`` is none of the above, or a file object opened in text mode.
        ValueError: ``max_bytes`` or ``max_pixels`` is not a positive integer.
    """
    _require_positive("max_bytes", max_bytes)
    _require_positive("max_pixels", max_pixels)
    if shrink_to is not None:
        _require_positive("shrink_to", shrink_to)
    data = _read_source(source, max_bytes=max_bytes)
    if not data:
        raise ImageError(
            "This file is empty: it contains no data at all.",
            "Choose the picture again; if it is still empty, save it again from the program it came from.",
        )
    image_format = _sniff_image_format(data)
    if image_format is None:
        raise _not_a_picture(data)
    return _decode(data, image_format, max_pixels=max_pixels, shrink_to=shrink_to)


# --- reading the bytes ---------------------------------------------------------------------------


def _require_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _read_source(source: ImageSource, *, max_bytes: int) -> bytes:
    """Return at most ``max_bytes`` bytes of ``source``; refuse a larger file without reading it all."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        _check_file_size(view.nbytes, max_bytes=max_bytes)
        return view.tobytes()
    if isinstance(source, (str, os.PathLike)):
        return _read_path(os.fspath(source), max_bytes=max_bytes)
    if callable(getattr(source, "read", None)) or callable(getattr(source, "getvalue", None)):
        return _read_file_object(source, max_bytes=max_bytes)
    raise TypeError(f"load_image expects a path, bytes or a binary file object, got {type(source).__name__}")


def _read_path(path: str | bytes, *, max_bytes: int) -> bytes:
    shown = os.fsdecode(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ImageError(
                f"{shown} is a folder, not a picture file.",
                "Choose one picture file inside the folder.",
            )
        if stat.S_ISREG(info.st_mode):
            _check_file_size(info.st_size, max_bytes=max_bytes)
        with open(path, "rb") as file:
            # One byte more than allowed tells a file that grew since stat (or a pipe) is too large.
            data = file.read(max_bytes + 1)
    except FileNotFoundError as error:
        raise ImageError(
            f"There is no file at {shown}.",
            "Check the file name and the folder, and try again.",
        ) from error
    except PermissionError as error:
        raise ImageError(
            f"This program is not allowed to read {shown}.",
            "Copy the picture somewhere you own (for example your home folder) and try again.",
        ) from error
    _check_file_size(len(data), max_bytes=max_bytes)
    return data


def _read_file_object(file: BinaryIO, *, max_bytes: int) -> bytes:
    # Streamlit's UploadedFile knows its size; checking it first refuses a huge upload before a copy.
    size = getattr(file, "size", None)
    if isinstance(size, int) and not isinstance(size, bool):
        _check_file_size(size, max_bytes=max_bytes)
    # With getvalue() the bytes are in memory already, so nothing is saved by reading less; and it
    # ignores the position, which an earlier read (a previous Streamlit rerun) may have left at the end.
    # Without it, one byte more than allowed is enough to tell that the file is too large.
    getvalue = getattr(file, "getvalue", None)
    data = getvalue() if callable(getvalue) else file.read(max_bytes + 1)
    if isinstance(data, str):
        raise TypeError("load_image needs a file opened in binary mode ('rb'), not text mode")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"reading the file object gave {type(data).__name__}, not bytes")
    _check_file_size(len(data), max_bytes=max_bytes)
    return bytes(data)


def _check_file_size(size: int, *, max_bytes: int) -> None:
    if size > max_bytes:
        raise ImageError(
            f"This file is {describe_size(size, rounding='up')}, more than the limit of "
            f"{describe_size(max_bytes, rounding='down')}.",
            "Make the picture smaller (for example, save it as JPEG or at a lower resolution) and try again.",
        )


# --- what is this file? --------------------------------------------------------------------------


def _sniff_image_format(data: bytes) -> str | None:
    """Pillow's name for the format of ``data`` if it is one we decode, judged by its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(_TIFF_MAGIC):
        return "TIFF"
    # "BM" alone also starts plain text ("BMW..."); the info-header size after it tells a real BMP.
    if data.startswith(b"BM") and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP"
    return None


def _not_a_picture(data: bytes) -> ImageError:
    """Name what ``data`` is, as well as its first bytes tell, in a refusal."""
    head = data[:_HEAD]
    if b"%PDF-" in head[:1024]:  # the PDF standard allows a little junk before the marker
        return ImageError(
            "This file is a PDF document, not a picture.",
            "Export the page as PNG or JPEG, or take a screenshot, and upload that.",
        )
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return ImageError(
            "This file is a ZIP archive (or a Word, Excel or PowerPoint file), not a picture.",
            "Unpack it, or save the picture out of the document, and upload the picture file itself.",
        )
    if head.startswith((b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07")):
        return ImageError(
            "This file is a compressed archive, not a picture.",
            "Unpack it and upload the picture file that is inside.",
        )
    if head[4:8] == b"ftyp":
        return _iso_media_error(head)
    other = _other_picture_format(head)
    if other is not None:
        return ImageError(
            f"This file is a {other} picture, a format this app does not read.", _SAVE_AS_PNG_OR_JPEG
        )
    text = _as_text(head)
    if text is not None:
        return _text_error(text)
    return ImageError("This file is not a picture that this app can read.", _ASK_FOR_A_PICTURE)


def _iso_media_error(head: bytes) -> ImageError:
    """Refusal for the ISO media family (``....ftyp<brand>``): HEIC/HEIF, AVIF, MP4 and MOV."""
    box_size = int.from_bytes(head[0:4], "big")
    brands = {head[8:12]} | {
        head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)
    }  # the major brand, then the compatible brands listed after the minor version
    if brands & {b"avif", b"avis"}:
        return ImageError(
            "This file is an AVIF picture, a format this app does not read.", _SAVE_AS_PNG_OR_JPEG
        )
    if brands & {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}:
        return ImageError(
            "This file is a HEIC photo (the format iPhones use by default), which this app cannot read.",
            "Share or export the photo as JPEG (or set the iPhone's camera to 'Most Compatible') "
            "and upload that.",
        )
    return ImageError(
        "This file is a video or sound file (MP4, MOV or similar), not a picture.",
        "Take a screenshot of the frame you want and upload that.",
    )


def _other_picture_format(head: bytes) -> str | None:
    """Name of a picture format we recognise but do not read, or None."""
    if head.startswith((b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")) and len(head) > 6 and head[4]:
        return "Windows icon (ICO)"
    if head.startswith(b"8BPS"):
        return "Photoshop (PSD)"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "JPEG 2000"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "JPEG XL"
    if head.startswith(b"qoif"):
        return "QOI"
    if head.startswith(b"gimp xcf"):
        return "GIMP (XCF)"
    if head.startswith(b"%!PS"):
        return "PostScript (EPS)"
    if len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3] in b" \t\r\n":
        return "Netpbm (PBM, PGM or PPM)"
    return None


def _as_text(head: bytes) -> str | None:
    """``head`` decoded if it reads as text (UTF-8, UTF-16 or mostly-ASCII), else None."""
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return head.decode("utf-16", errors="replace")
    if b"\x00" in head:
        return None
    text = head.decode("utf-8", errors="replace")
    # A few replacement characters are allowed: a multi-byte character cut at the end of ``head``.
    odd = sum(1 for ch in text if ch == "\ufffd" or not (ch.isprintable() or ch in "\t\n\r\f\v"))
    if odd <= 0.05 * len(text):
        return text
    # Latin-1 or Windows-1252 text (accents are not UTF-8): no control bytes, mostly printable ASCII.
    # Random bytes have about one control byte in eight and only 37 % printable ASCII.
    controls = head.translate(None, _TEXT_BYTES + bytes(range(0x80, 0x100)))
    ascii_share = 1 - len(head.translate(None, _TEXT_BYTES)) / len(head)
    return head.decode("latin-1") if not controls and ascii_share >= 0.7 else None


def _text_error(text: str) -> ImageError:
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith(("<!doctype html", "<html", "<head", "<body")):
        return ImageError(
            "This file is a web page (HTML), not a picture.",
            "In the browser, right-click the picture itself, choose 'Save image as', "
            "and upload the file that saves.",
        )
    if lowered.startswith(("<svg", "<?xml", "<!doctype svg", "<!--")) and "<svg" in lowered:
        return ImageError(
            "This file is an SVG drawing, which is made of shapes rather than pixels.",
            "Export it as PNG (drawing programs and browsers can) and upload that.",
        )
    return ImageError("This file contains text, not a picture.", _ASK_FOR_A_PICTURE)


# --- decoding ------------------------------------------------------------------------------------


def _decode(data: bytes, image_format: str, *, max_pixels: int, shrink_to: int | None = None) -> Image.Image:
    """Open ``data`` as ``image_format``, check its size from the header, then decode and convert."""
    try:
        # Image.open reads the header only. Restricting ``formats`` keeps every other plugin away.
        opened = Image.open(io.BytesIO(data), formats=[image_format])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow's own check in Image.open fires first for pictures over ~179 megapixels (and, where
        # the warnings filter turns its warning into an error, over ~89). It is left as Pillow set it.
        raise _pillow_bomb_error(error, max_pixels=max_pixels) from error
    except _DECODE_ERRORS as error:
        raise _unreadable(data, image_format, error) from error
    with opened:
        _check_pixels(opened.size, max_pixels=max_pixels)  # before a single pixel is decoded
        if shrink_to is not None and image_format == "JPEG" and min(opened.size) > 2 * shrink_to:
            # The JPEG decoder scales by 1/2, 1/4 or 1/8 while decoding. draft picks the strongest scale
            # that keeps both sides at least the size asked for: here the size with shrink_to on the
            # shorter side (rounded up, so that side never ends below shrink_to).
            width, height = opened.size
            short = min(width, height)
            opened.draft("RGB", (-(-width * shrink_to // short), -(-height * shrink_to // short)))
        try:
            opened.load()  # the first frame of an animated GIF or WebP, the first page of a TIFF
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _pillow_bomb_error(error, max_pixels=max_pixels) from error
        except _DECODE_ERRORS as error:
            raise _unreadable(data, image_format, error) from error
        # A copy in every case (rotated or not), so the result no longer refers to ``opened``.
        upright = ImageOps.exif_transpose(opened)
    rgb = _to_rgb(upright)
    if shrink_to is not None and min(rgb.size) > 2 * shrink_to:
        # Box averages over factor x factor pixels: a few ms for a 12-megapixel PNG, where a LANCZOS
        # resize took 20 ms even from a JPEG already decoded at 1/4 (bench/profile_page.py).
        rgb = rgb.reduce(min(rgb.size) // shrink_to)
    return rgb


def _check_pixels(size: tuple[int, int], *, max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        # Longest side that keeps the same shape within the cap, rounded down to a tidy number.
        longest = max(width, height) * math.sqrt(max_pixels / (width * height))
        tidy = int(longest // 100 * 100) if longest >= 200 else int(longest)
        raise ImageError(
            f"This picture is {width:,} x {height:,} pixels ({_pixels_text(width * height)}), "
            f"more than the limit of {_pixels_text(max_pixels)}.",
            f"Resize it to at most {tidy:,} pixels on its longest side and try again.",
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"This picture is only {width} x {height} pixels, too small to show anything.",
            f"Use a picture at least {MIN_SIDE} pixels wide and high (a few hundred is best).",
        )


def _pixels_text(pixels: int) -> str:
    if pixels >= 1_000_000:
        return f"{pixels / 1_000_000:,.1f}".removesuffix(".0") + " megapixels"
    return f"{pixels:,} pixels"


def _pillow_bomb_error(error: Exception, *, max_pixels: int) -> ImageError:
    # Pillow's message is the only place its pixel count is given: "Image size (N pixels) exceeds...".
    match = _PIXEL_COUNT.search(str(error))
    claimed = (
        f"claims to have {_pixels_text(int(match.group(1)))}"
        if match
        else "claims to have far too many pixels"
    )
    return ImageError(
        f"This picture {claimed}, more than the limit of {_pixels_text(max_pixels)}.",
        "Resize it in an image editor to a few thousand pixels on its longest side and try again.",
    )


def _unreadable(data: bytes, image_format: str, error: Exception) -> ImageError:
    """Refusal for a file that starts like a picture but cannot be decoded."""
    title = _TITLES[image_format]
    if isinstance(error, EOFError) or "truncated" in str(error).lower() or _looks_cut_off(data, image_format):
        return ImageError(
            f"This {title} picture is incomplete: it seems to have been cut off while it was "
            "being copied or uploaded.",
            "Try saving or uploading it again.",
        )
    return ImageError(
        f"This {title} file is damaged, so the picture in it cannot be read.",
        "Try saving or uploading it again; if that fails, open it in an image editor, "
        "save it as PNG or JPEG, and upload that.",
    )


def _looks_cut_off(data: bytes, image_format: str) -> bool:
    """Whether ``data`` lacks the end its format promises (only used to word a refusal)."""
    tail = data[-32:]
    if image_format == "PNG":
        return b"IEND" not in tail
    if image_format == "JPEG":
        return b"\xff\xd9" not in tail
    if image_format == "GIF":
        return not data.rstrip(b"\x00").endswith(b";")
    if image_format == "WEBP":
        return int.from_bytes(data[4:8], "little") + 8 > len(data)
    if image_format == "BMP":
        return int.from_bytes(data[2:6], "little") > len(data)
    return False  # TIFF has no end marker; Pillow says "truncated" itself


# --- converting to RGB ---------------------------------------------------------------------------


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert a loaded image of any Pillow mode to ``"RGB"`` (a new image unless already RGB)."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_rgb(image)
    if mode in _ALPHA_MODES or "transparency" in image.info:
        # Pillow turns a palette's or a colour key's transparency into alpha on the way to RGBA.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "RGB":
        return image
    try:
        return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, RGBX
    except ValueError as error:
        raise ImageError(
            f"This picture uses a colour format ({mode}) that this app cannot read.",
            "Open it in an image editor, save it as an ordinary RGB PNG or JPEG, and upload that.",
        ) from error


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Scale a single-channel 16-bit, 32-bit integer or float image to 8-bit gray, then RGB.

    Pillow's own ``convert("L")`` clips these (every 16-bit value above 255 becomes white), so the
    scaling is done here. Integer values that fit 0..65535 are taken as 16-bit data and mapped
    linearly (65535 -> 255, 32896 -> 128), which is what a 16-bit PNG or TIFF holds even when Pillow
    reads it as ``"I"``. Floats within 0..1 are multiplied by 255. Anything else (negative or larger
    values, as in scientific TIFFs) is stretched from its minimum to its maximum.
    """
    values = np.asarray(image)  # (H, W)
    if values.dtype.kind == "f":
        values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (values.min(), values.max()) if values.size else (0, 0)
    if values.dtype.kind in "iu" and low >= 0 and high <= 65535:
        wide = values.astype(np.uint32)
        gray = (wide * 255 + 32767) // 65535  # rounded, not truncated
    elif values.dtype.kind == "f" and low >= 0.0 and high <= 1.0:
        gray = np.rint(values * 255.0)
    elif high > low:
        gray = np.rint((values.astype(np.float32) - low) * (255.0 / (float(high) - float(low))))
    else:
        gray = np.zeros(values.shape, dtype=np.uint8)
    return Image.fromarray(gray.astype(np.uint8)).convert("RGB")
