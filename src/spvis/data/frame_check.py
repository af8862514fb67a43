"""Is a frame file whole? A cheap check from its header and its last bytes, without decoding a pixel.

A truncated or zeroed JPEG still has a readable header (PIL opens it and reports the right size) and fails only
when its pixels are decoded, which in training happens at some later step. This reads the header (size, inside the
pixel budget of ``spvis.data.png_io``) and the file's last ``TAIL_BYTES``: a JPEG must hold its end-of-image marker
``FF D9`` there, after the start of its scan data (so a marker inside the header's tables or an EXIF thumbnail does
not count), a PNG its ``IEND`` chunk. Entropy-coded JPEG data cannot contain ``FF D9`` (``FF`` is byte-stuffed), so
a file cut anywhere after its header, or overwritten with zeros, has none. A short trailer after the marker (some
cameras append one) passes. Other formats get the header check only.

Cost, measured (warm file cache, one core): 0.08 ms per frame for a 256x192 or a 1280x720 JPEG, against 0.6 ms and
6.5 ms to decode them (and 4.5 ms for libjpeg's 1/8-scale decode): 90,000 frames are checked in about 7 s.
"""

from __future__ import annotations

import os
from pathlib import Path

from spvis.data.png_io import open_image
from spvis.errors import DataFormatError, one_line

TAIL_BYTES = 4096
JPEG_END = b"\xff\xd9"
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk type and its CRC


class BrokenFrameError(OSError):
    """A frame file that is empty, unreadable, outside the pixel budget, cut short or overwritten. The message is
    the reason only; callers name the file and the dataset entry."""


def frame_file_error(source: str | Path, path: str | Path, exc: OSError) -> DataFormatError:
    """The error for a dataset frame file that is missing or unreadable (``exc`` from opening or checking it),
    naming the dataset ``source`` and the file: one wording for every reader of dataset frames."""
    if isinstance(exc, FileNotFoundError):
        return DataFormatError(source, f"frame file not found: {path}", field="file_names")
    return DataFormatError(source, f"cannot read frame {path}: {one_line(exc)}", field="file_names")


def check_frame_file(path: str | Path) -> tuple[int, int]:
    """(height, width) of a whole frame file, read from its header; ``FileNotFoundError`` when it does not exist,
    ``BrokenFrameError`` (an ``OSError``) with the reason when it is empty, unreadable or incomplete."""
    path = Path(path)
    size = os.stat(path).st_size  # FileNotFoundError for a missing frame
    if size == 0:
        raise BrokenFrameError("empty file (0 bytes)")
    try:
        with open_image(path) as im:
            width, height = im.size
            kind = im.format
            data_start = im.fp.tell() if kind in ("JPEG", "MPO") else 0  # PIL stops reading just after SOS
    except FileNotFoundError:
        raise
    except OSError as exc:  # not an image, or outside the pixel budget (ImageBudgetError)
        raise BrokenFrameError(one_line(exc)) from None
    end = {"JPEG": JPEG_END, "MPO": JPEG_END, "PNG": PNG_END}.get(kind)
    if end is not None:
        with open(path, "rb") as handle:
            handle.seek(max(size - TAIL_BYTES, data_start))
            if end not in handle.read():
                raise BrokenFrameError(f"the {kind} data ends without its end marker: the file is truncated or "
                                       f"corrupt ({size} bytes)")
    return height, width
