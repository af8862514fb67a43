"""Ground-truth overlays of one dataset video (``spvis data show``): an mp4, or a png contact sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spvis.data.frames import open_frame_source
from spvis.data.ytvis import VideoDataset, VideoRecord
from spvis.errors import DataFormatError, SpvisError
from spvis.viz.overlay import draw_overlay

SHEET_COLUMNS = 4
SHEET_TILE_WIDTH = 320


def find_video(ds: VideoDataset, key: str | int) -> VideoRecord:
    """The video with id ``key`` (or with that name / first-frame folder); DataFormatError if none."""
    text = str(key)
    for video in ds.videos:
        folder = Path(video.file_names[0]).parent.name
        if text == str(video.id) or (video.name and text == video.name) or text == folder:
            return video
    ids = ", ".join(str(v.id) for v in ds.videos[:10]) + (", ..." if len(ds.videos) > 10 else "")
    raise DataFormatError(ds.json_path, f"no video {text!r} (ids: {ids})", field="videos")


def overlay_frames(ds: VideoDataset, video: VideoRecord, *, frame_indices: list[int] | None = None):
    """Yield (t, uint8 (H, W, 3) overlay) of the ground truth of ``video``, reading frames lazily."""
    wanted = set(range(video.length) if frame_indices is None else frame_indices)
    root = ds.image_root if ds.image_root is not None else ds.json_path.parent
    source = open_frame_source(video, image_root=root, max_frames=max(wanted) + 1)  # stop after the last wanted
    tracks = ds.tracks(video.id)
    for t, frame in enumerate(source):
        if t not in wanted:
            continue
        present = [tr for tr in tracks if tr.segmentations[t] is not None]
        masks = (np.stack([tr.mask(t) for tr in present]) if present
                 else np.zeros((0, video.height, video.width), dtype=bool))  # (N, H, W)
        labels = [ds.dataset_to_contiguous_id[tr.category_id] for tr in present]
        yield t, draw_overlay(frame, masks, [tr.id for tr in present], labels, ds.class_names)
    if source.truncated:
        raise SpvisError(source.error)


def _sheet(tiles: list[np.ndarray]) -> np.ndarray:
    import cv2

    h, w = tiles[0].shape[:2]
    tw = min(SHEET_TILE_WIDTH, w)
    th = max(1, int(round(h * tw / w)))
    small = [cv2.resize(t, (tw, th), interpolation=cv2.INTER_AREA) for t in tiles]
    cols = min(SHEET_COLUMNS, len(small))
    rows = (len(small) + cols - 1) // cols
    sheet = np.full((rows * th, cols * tw, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(small):
        r, c = divmod(i, cols)
        sheet[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = tile
    return sheet


def show_video(ds: VideoDataset, key: str | int, out: str | Path, *, fps: float = 6.0,
               max_frames: int | None = None) -> dict:
    """Write the ground-truth overlay of one video to ``out`` (.mp4 all frames, .png up to 8 frames on a sheet)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".mp4", ".png"):
        raise SpvisError(f"{out}: --out must end in .mp4 or .png")
    video = find_video(ds, key)
    limit = video.length if max_frames is None else min(max_frames, video.length)
    if suffix == ".png":
        count = min(limit, 8)
        picks = sorted({int(round(x)) for x in np.linspace(0, limit - 1, count)})
        tiles = [img for _, img in overlay_frames(ds, video, frame_indices=picks)]
        from PIL import Image

        from spvis.utils.atomic_io import atomic_save

        sheet = _sheet(tiles)
        atomic_save(out, lambda name: Image.fromarray(sheet).save(name, format="PNG"))
        return {"video": video.id, "frames": len(tiles), "out": str(out)}
    from spvis.viz.video_writer import VideoWriter

    written = 0
    with VideoWriter(out, fps=fps) as writer:
        for _, img in overlay_frames(ds, video, frame_indices=list(range(limit))):
            writer.write(img)
            written += 1
    return {"video": video.id, "frames": written, "out": str(out)}
