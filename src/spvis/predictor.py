"""``spvis.load`` and ``VideoSegmenter``: the Python front end over the inference engines.

One object holds a model and its config and offers what the CLI does: ``stream`` (online, a FrameResult
per frame, flat memory), ``predict`` (one video, online or offline, a VideoResult), ``predict_dataset``
(every video of a YouTube-VIS json) and ``save_pretrained`` (a model folder with a model card).
"""

from __future__ import annotations

import sys
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from spvis.engine.frame_result import FrameResult, VideoResult
from spvis.engine.inference import class_names_for, iter_jobs, load_model, run_video
from spvis.errors import SpvisError

def list_models() -> list[str]:
    """Zoo names ``spvis.load`` accepts besides paths (``spvis models`` shows what each one is)."""
    from spvis.zoo.registry import list_entries

    return [entry.name for entry in list_entries() if entry.loadable]


def load(src: str | Path = "demo", *, device: str = "auto", half: bool = False,
         overrides: Sequence[str] = ()) -> "VideoSegmenter":
    """A VideoSegmenter from a .safetensors file, a model folder or a zoo name (``spvis models``): official
    weights are downloaded, verified and converted on first use and cached under ``$SPVIS_HOME``.

    ``device``: cpu | cuda | cuda:N | auto; ``half``: bf16 autocast on CPU, fp16 on CUDA (TEST.HALF=auto)."""
    from spvis.zoo.resolve import resolve_model

    weights = resolve_model(src)
    model, cfg = load_model(weights, None, [f"MODEL.DEVICE={device}", *(["TEST.HALF=auto"] if half else []),
                                            *overrides])
    return VideoSegmenter(model, cfg, source=str(src))


class VideoSegmenter:
    """A trained model ready for inference: segment, track and (offline) refine videos."""

    def __init__(self, model: Any, cfg: Any, *, source: str = ""):
        self.model, self.cfg, self.source = model, cfg, source
        self._warned = False

    @property
    def names(self) -> list[str]:
        """Class names by contiguous label (MODEL.CLASS_NAMES or the builtin dataset's, else ``class <k>``)."""
        return class_names_for(self.cfg) or [f"class {i}" for i in range(self.cfg.MODEL.NUM_CLASSES)]

    def stream(self, src: str | Path | Iterable[np.ndarray], *, score_thr: float = 0.5,
               max_frames: int | None = None) -> Iterator[FrameResult]:
        """Online results frame by frame; ``src`` is a video file, a frame folder or an iterable of
        (H, W, 3) uint8 RGB arrays. Tracks scoring below ``score_thr`` on a frame are left out of it. Each
        FrameResult keeps its frame and the class names, so ``result.plot()`` draws it."""
        from spvis.data import open_frame_source
        from spvis.engine.streaming import OnlineTracker

        self._warn_domain(src)
        name = "<frames>"
        if isinstance(src, (str, Path)):
            if not Path(src).exists():
                raise SpvisError(f"{src}: no such video file or frame folder")
            name, src = str(src), open_frame_source(src, max_frames=max_frames)
        engine = OnlineTracker(self.model, self.cfg, score_thr=score_thr, keep_frames=True)  # for .plot()
        names = self.names
        for result in engine.stream(islice(iter(src), max_frames), source=name):
            result.names = names
            yield result

    def predict(self, src: str | Path, *, mode: str = "online", max_memory_gb: float | None = None) -> VideoResult:
        """One video (file or frame folder) end to end: benchmark-format entries, one per track and class."""
        if mode not in ("online", "offline"):
            raise SpvisError(f"mode must be online or offline, got {mode!r}")
        if not Path(src).exists():
            raise SpvisError(f"{src}: no such video file or frame folder")
        self._warn_domain(src)
        job = next(iter_jobs(str(src), None, self.cfg))
        return run_video(self.model, self.cfg, job, mode=mode, out_dir=None, score_thr=0.0, max_frames=None,
                         max_memory_gb=max_memory_gb)

    def iter_dataset(self, json_path: str | Path, image_root: str | Path | None = None, *,
                     mode: str = "online") -> Iterator[VideoResult]:
        """Every video of a YouTube-VIS/OVIS json, one VideoResult at a time (``VISEvaluator.process`` takes
        ``video.video_id, video.entries``)."""
        self._warn_domain(json_path)
        for job in iter_jobs(str(json_path), None if image_root is None else str(image_root), self.cfg):
            yield run_video(self.model, self.cfg, job, mode=mode, out_dir=None, score_thr=0.0, max_frames=None)

    def predict_dataset(self, json_path: str | Path, image_root: str | Path | None = None, *,
                        mode: str = "online") -> list[dict]:
        """Every video of a YouTube-VIS/OVIS json; the entries of a results.json (``spvis.evaluate`` scores it)."""
        return [entry for video in self.iter_dataset(json_path, image_root, mode=mode) for entry in video.entries]

    def _warn_domain(self, src: Any) -> None:
        """One stderr line, once per segmenter, when a synthetic-shapes model meets other input (domain_check)."""
        from spvis.engine.domain_check import domain_warning

        message = None if self._warned else domain_warning(self.cfg, src)
        if message:
            print(f"spvis: warning: {message}", file=sys.stderr)
            self._warned = True

    def save_pretrained(self, folder: str | Path, *, recipe: str = "") -> Path:
        """Write a model folder (model.safetensors, config.yaml, MODEL_CARD.md) that ``spvis.load`` reads."""
        from spvis.checkpoints.io import save_weights
        from spvis.checkpoints.model_card import write_model_card

        folder = Path(folder)
        if folder.suffix == ".safetensors" or folder.is_file():
            raise SpvisError(f"{folder}: save_pretrained writes a folder, not a file")
        from spvis.zoo.registry import list_entries

        trained_on = {entry.name: entry.trained_on for entry in list_entries()}.get(self.source, "")
        weights = save_weights(folder, self.model, self.cfg)
        write_model_card(folder, self.cfg, names=self.names,
                         recipe=recipe or (f"Trained on {trained_on}." if trained_on else "see the config"))
        return weights
