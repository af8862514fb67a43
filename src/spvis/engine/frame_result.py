"""What inference yields per frame and per video: the contract shared by online and offline engines.

Both results also draw themselves (``plot``: an RGB overlay, as ``spvis infer`` writes it) and serialise
themselves in the benchmark format (``to_dict`` / ``to_json``), so a notebook needs no other module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Sequence

import numpy as np

PLOT_SCORE_THR = 0.5  # what overlays show by default (as spvis infer's)


def _benchmark_entry(entry: dict) -> dict:
    """A result entry in plain json types, as results.json stores it."""
    from spvis.evaluation.results_io import json_ready_results

    return json_ready_results([entry])[0]


@dataclass
class FrameResult:
    """One frame's instances after tracking, at the frame's original resolution.

    ``track_ids`` are stable identities over the whole video (not query slots); ``masks`` is
    bool (N, H, W); ``scores`` are the current per-track confidences and ``labels`` contiguous
    class ids (0..K-1). ``frame`` is the uint8 RGB input frame (H, W, 3) when the caller asked for it
    (overlay rendering, ``VideoSegmenter.stream``), else None; ``names`` the class names by label when known.
    """

    frame_index: int
    track_ids: np.ndarray  # (N,) int64
    labels: np.ndarray  # (N,) int64
    scores: np.ndarray  # (N,) float32
    masks: np.ndarray  # (N, H, W) bool
    frame: np.ndarray | None = None
    names: Sequence[str] | None = None

    def plot(self, *, frame: np.ndarray | None = None, score_thr: float = PLOT_SCORE_THR) -> np.ndarray:
        """uint8 (H, W, 3) RGB overlay of the instances scoring >= ``score_thr`` on ``frame`` (default: the
        frame this result was computed on), coloured by track id and labelled ``class #id score``."""
        from spvis.errors import SpvisError
        from spvis.viz.overlay import draw_overlay

        image = self.frame if frame is None else frame
        if image is None:
            raise SpvisError("FrameResult.plot: this result holds no frame (stream with keep_frames=True or pass "
                             "frame=)")
        keep = self.scores >= score_thr
        return draw_overlay(image, self.masks[keep], self.track_ids[keep].tolist(), self.labels[keep].tolist(),
                            list(self.names or []), self.scores[keep].tolist())

    def to_dict(self) -> dict[str, Any]:
        """json-ready: frame index and one {track_id, label, name, score, segmentation (compressed RLE)} per
        instance, masks in the COCO RLE the benchmark format uses per frame."""
        from spvis.data.rle import encode_frame_masks

        names = list(self.names or [])
        rles = encode_frame_masks(np.asarray(self.masks, dtype=bool))
        instances = [{"track_id": int(t), "label": int(k), "name": names[int(k)] if 0 <= int(k) < len(names) else None,
                      "score": float(s), "segmentation": rle}
                     for t, k, s, rle in zip(self.track_ids.tolist(), self.labels.tolist(), self.scores.tolist(), rles)]
        return {"frame_index": int(self.frame_index), "instances": instances}

    def to_json(self, path: str | Path | None = None) -> str:
        """``to_dict()`` as JSON text; also written (atomically) to ``path`` when given."""
        return _dump(self.to_dict(), path)


@dataclass
class VideoResult:
    """Final per-video output: one entry per (track, class) in the benchmark-server format.

    ``entry_track_ids[i]`` is the track of ``entries[i]`` (``track``); engines may hand entries over with a
    ``track_id`` key, which is moved there so entries keep exactly the benchmark fields. ``name`` is the
    video's name (file stem, folder or dataset video id); ``source`` the path it was read from and ``names``
    the class names by category id (``plot``)."""

    video_id: int | str
    num_frames: int
    height: int
    width: int
    entries: list[dict] = field(default_factory=list)  # {video_id, category_id, score, segmentations}
    truncated: bool = False
    error: str | None = None
    name: str = ""
    source: str | None = None
    names: dict[int, str] = field(default_factory=dict)  # category id -> class name
    entry_track_ids: list[int] = field(default_factory=list)  # track of each entry (same order)

    def __post_init__(self) -> None:
        if any("track_id" in entry for entry in self.entries):
            self.entry_track_ids = [int(entry["track_id"]) for entry in self.entries]
            self.entries = [{k: v for k, v in entry.items() if k != "track_id"} for entry in self.entries]

    def keep_entries(self, keep: Sequence[bool]) -> None:
        """Keep the entries (and their track ids) where ``keep`` is true."""
        if self.entry_track_ids:
            self.entry_track_ids = [t for t, k in zip(self.entry_track_ids, keep) if k]
        self.entries = [e for e, k in zip(self.entries, keep) if k]

    def track(self, track_id: int) -> list[dict]:
        """The entries of one track (one per class the top-k kept for it, best first); KeyError if unknown."""
        found = [entry for entry, t in zip(self.entries, self.entry_track_ids) if t == track_id]
        if not found:
            raise KeyError(f"no track {track_id} in video {self.name or self.video_id} "
                           f"(tracks: {sorted(set(self.entry_track_ids))})")
        return sorted(found, key=lambda entry: -entry["score"])

    @property
    def track_ids(self) -> list[int]:
        """Track ids of the entries, best score first, each once."""
        order = sorted(range(len(self.entries)), key=lambda i: -self.entries[i]["score"])
        return list(dict.fromkeys(self.entry_track_ids[i] for i in order if i < len(self.entry_track_ids)))

    def masks(self, entry: dict) -> np.ndarray:
        """bool (T, H, W) masks of one entry (empty frames where its segmentation is null)."""
        from spvis.data.rle import decode_rles

        return decode_rles(entry["segmentations"], self.height, self.width)

    def plot(self, index: int, *, frame: np.ndarray | None = None, score_thr: float = PLOT_SCORE_THR) -> np.ndarray:
        """uint8 (H, W, 3) RGB overlay of frame ``index``: every entry scoring >= ``score_thr`` that has a mask
        there, coloured by track. ``frame`` defaults to frame ``index`` read again from ``source``."""
        from spvis.data.rle import decode_rles
        from spvis.errors import SpvisError
        from spvis.viz.overlay import draw_overlay

        if not 0 <= index < self.num_frames:
            raise SpvisError(f"VideoResult.plot: frame {index} is outside 0..{self.num_frames - 1}")
        if frame is None:
            frame = self._read_frame(index)
        kept = [e for e in sorted(self.entries, key=lambda e: -e["score"])
                if e["score"] >= score_thr and e["segmentations"][index] is not None]
        masks = decode_rles([entry["segmentations"][index] for entry in kept], self.height, self.width)
        track_of = {id(e): t for e, t in zip(self.entries, self.entry_track_ids)}
        ids = [int(track_of.get(id(e), k + 1)) for k, e in enumerate(kept)]
        categories = sorted(set(self.names) | {e["category_id"] for e in kept})
        label_of = {cid: k for k, cid in enumerate(categories)}
        return draw_overlay(frame, masks, ids, [label_of[e["category_id"]] for e in kept],
                            [self.names.get(cid, f"class {cid}") for cid in categories],
                            [float(e["score"]) for e in kept])

    def _read_frame(self, index: int) -> np.ndarray:
        from spvis.data import open_frame_source
        from spvis.errors import SpvisError

        if self.source is None or not Path(self.source).exists():
            raise SpvisError(f"VideoResult.plot: the video's frames are not available ({self.source or 'no source'}"
                             f"); pass frame=")
        frame = next(islice(iter(open_frame_source(self.source)), index, None), None)
        if frame is None:
            raise SpvisError(f"VideoResult.plot: {self.source} has no frame {index}")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """json-ready: the video's id, name and size, and its ``results`` in the benchmark format (the entries a
        results.json holds for this video)."""
        return {"video_id": self.video_id, "name": self.name, "num_frames": self.num_frames, "height": self.height,
                "width": self.width, "results": [_benchmark_entry(e) for e in self.entries]}

    def to_json(self, path: str | Path | None = None) -> str:
        """The benchmark results of this video as JSON text (a results.json for it: a list of entries); also
        written (atomically) to ``path`` when given."""
        return _dump([_benchmark_entry(e) for e in self.entries], path)


def _dump(obj: Any, path: str | Path | None) -> str:
    text = json.dumps(obj)
    if path is not None:
        from spvis.utils.atomic_io import atomic_write_text

        atomic_write_text(path, text)
    return text
