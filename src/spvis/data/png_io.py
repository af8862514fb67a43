"""Reading annotation / prediction PNGs with one-line errors and a size budget.

Two kinds: RGB panoptic id maps (VIPSeg ``panomasksRGB``, submission ``pan_pred``: id = R + 256 G + 256² B)
and single-channel label maps (VSPW ``mask``, VSS predictions). The header is checked against the budget
before any pixel is decoded, so a corrupt or hostile header cannot make us allocate gigabytes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from spvis.errors import DataFormatError, one_line

MAX_SIDE = 16384  # pixels per side; larger than any video frame in use (8K is 7680 wide)
MAX_PIXELS = 50_000_000  # pixels per frame (an 8K frame has 33 M)
ID_LIMIT = 256 ** 3  # ids are 24-bit (three 8-bit channels)


def check_size(file: str | Path, height: int, width: int, *, entry: str | None = None,
               field: str | None = None) -> None:
    """DataFormatError unless a frame of ``height`` x ``width`` is inside the size budget."""
    if height < 1 or width < 1 or height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
        raise DataFormatError(file, f"frame size {height}x{width} is outside the budget (sides 1..{MAX_SIDE}, "
                              f"at most {MAX_PIXELS:,} pixels; a corrupt header?)", entry=entry, field=field)


class ImageBudgetError(OSError):
    """An image whose header is outside the size budget (or that PIL itself calls a decompression bomb).

    An ``OSError``, so every reader that reports an unreadable frame (``except OSError``) reports this too."""


def _pil_open(path: str | Path) -> Image.Image:
    """``Image.open`` (header only); PIL's own decompression-bomb check (not an ``OSError``) reported as an
    ``ImageBudgetError``: the one place an image file is opened."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our budget is stricter
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageBudgetError(f"frame size is outside the budget (at most {MAX_PIXELS:,} pixels; "
                               f"{one_line(exc)})") from None


def open_image(path: str | Path) -> Image.Image:
    """``Image.open`` (header only, nothing decoded yet) of a frame inside the size budget.

    PIL raises ``DecompressionBombError`` (not an ``OSError``) above twice its own pixel limit and decodes
    anything below; here both cases are an ``ImageBudgetError`` naming the size, before any pixel is decoded.
    """
    im = _pil_open(path)
    w, h = im.size
    if h < 1 or w < 1 or h > MAX_SIDE or w > MAX_SIDE or h * w > MAX_PIXELS:
        im.close()
        raise ImageBudgetError(f"frame size {h}x{w} is outside the budget (sides 1..{MAX_SIDE}, at most "
                               f"{MAX_PIXELS:,} pixels)")
    return im


def _open(path: Path, entry: str | None, field: str | None, what: str) -> Image.Image:
    """``Image.open`` (header only) with one-line errors; PIL's own bomb check reports as our budget."""
    try:
        return _pil_open(path)
    except FileNotFoundError:
        raise DataFormatError(path, "file not found", entry=entry, field=field) from None
    except ImageBudgetError as exc:
        raise DataFormatError(path, str(exc), entry=entry, field=field) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataFormatError(path, f"not a readable {what} ({one_line(exc)})", entry=entry, field=field) from None


def image_size(path: Path, *, entry: str | None = None, field: str | None = None) -> tuple[int, int]:
    """(height, width) from the header of an image file, checked against the budget."""
    with _open(path, entry, field, "image") as im:
        w, h = im.size
    check_size(path, h, w, entry=entry, field=field)
    return h, w


def _open_checked(path: Path, entry: str | None, field: str | None) -> Image.Image:
    im = _open(path, entry, field, "PNG")
    w, h = im.size
    try:
        check_size(path, h, w, entry=entry, field=field)
    except DataFormatError:
        im.close()
        raise
    return im


def read_id_png(path: Path, *, entry: str | None = None, field: str | None = None) -> np.ndarray:
    """uint32 (H, W) segment ids of an RGB(A) PNG: R + 256 G + 256² B (alpha ignored)."""
    im = _open_checked(path, entry, field)
    try:
        if im.mode not in ("RGB", "RGBA"):
            raise DataFormatError(path, f"must be an RGB PNG of ids (R + 256 G + 256² B), got mode {im.mode}",
                                  entry=entry, field=field)
        rgbx = np.asarray(im.convert("RGBA"))  # (H, W, 4) uint8; decoding happens here
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataFormatError(path, f"not a readable PNG ({one_line(exc)})", entry=entry, field=field) from None
    finally:
        im.close()
    # little-endian view: R + G<<8 + B<<16 + A<<24, then drop the alpha byte
    ids = np.ascontiguousarray(rgbx).view("<u4")[..., 0] & np.uint32(0xFFFFFF)
    return ids.astype(np.uint32, copy=False)


def read_label_png(path: Path, *, entry: str | None = None, field: str | None = None) -> np.ndarray:
    """uint8 (H, W) values of a single-channel label PNG (mode L, or P read as palette indices)."""
    im = _open_checked(path, entry, field)
    try:
        if im.mode not in ("L", "P"):
            raise DataFormatError(path, f"must be a single-channel label PNG (mode L or P), got mode {im.mode}",
                                  entry=entry, field=field)
        labels = np.array(im)  # (H, W) uint8
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataFormatError(path, f"not a readable PNG ({one_line(exc)})", entry=entry, field=field) from None
    finally:
        im.close()
    return labels


def write_id_png(path: Path, ids: np.ndarray, *, atomic: bool = False) -> None:
    """Write uint (H, W) ids < 256³ as an RGB PNG (the inverse of ``read_id_png``); ``atomic``: through a temporary
    file renamed onto ``path`` (a killed run never leaves half a PNG)."""
    ids = np.asarray(ids, dtype=np.uint32)
    rgb = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)  # (H, W, 3)
    _save_png(Image.fromarray(rgb), Path(path), atomic)  # (H, W, 3) uint8 -> RGB


def write_label_png(path: Path, labels: np.ndarray, *, atomic: bool = False) -> None:
    """Write uint8 (H, W) labels as a single-channel (mode L) PNG (``atomic`` as in ``write_id_png``)."""
    _save_png(Image.fromarray(np.asarray(labels, dtype=np.uint8)), Path(path), atomic)  # (H, W) uint8 -> L


def _save_png(image: Image.Image, path: Path, atomic: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not atomic:
        image.save(path, format="PNG")
        return
    from spvis.utils.atomic_io import atomic_save

    atomic_save(path, lambda tmp: image.save(tmp, format="PNG"))

