"""``spvis.load`` and ``VideoSegmenter``: the Python front end over the inference engines.

One object holds a model and its config and offers what the CLI does: ``stream`` (online, a FrameResult
per frame, flat memory), ``predict`` (one video, online or offline, a VideoResult), ``predict_dataset``
(every video of a YouTube-VIS json) and ``save_pretrained`` (a model folder with a model card); and, SAM 2 style,
an explicit state: ``state = segmenter.init_state()``, then ``segmenter.step(state, frame)`` per frame (the same
FrameResults as ``stream``; ``state.state_dict()`` / ``OnlineState.from_state_dict`` save and restore a video).
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from spvis.engine.frame_result import FrameResult, VideoResult
from spvis.engine.inference import BUILTIN_WEIGHTS, class_names_for, iter_jobs, load_model, run_video
from spvis.errors import SpvisError

if TYPE_CHECKING:
    from spvis.modeling.inference import OnlineState

BUILTIN_MODELS = {"demo": BUILTIN_WEIGHTS}


def list_models() -> list[str]:
    """Names ``spvis.load`` accepts besides paths."""
    return sorted(BUILTIN_MODELS)


def load(src: str | Path = "demo", *, device: str = "auto", half: bool = False,
         overrides: Sequence[str] = ()) -> "VideoSegmenter":
    """A VideoSegmenter from a .safetensors file, a model folder or a built-in name (``list_models()``).

    ``device``: cpu | cuda | cuda:N | auto; ``half``: bf16 autocast on CPU, fp16 on CUDA (TEST.HALF=auto)."""
    weights = BUILTIN_MODELS.get(str(src), src)
    model, cfg = load_model(weights, None, [f"MODEL.DEVICE={device}", *(["TEST.HALF=auto"] if half else []),
                                            *overrides])
    return VideoSegmenter(model, cfg)


class VideoSegmenter:
    """A trained model ready for inference: segment, track and (offline) refine videos."""

    def __init__(self, model: Any, cfg: Any):
        self.model, self.cfg = model, cfg

    @property
    def names(self) -> list[str]:
        """Class names by contiguous label (MODEL.CLASS_NAMES or the builtin dataset's, else ``class <k>``)."""
        return class_names_for(self.cfg) or [f"class {i}" for i in range(self.cfg.MODEL.NUM_CLASSES)]

    def stream(self, src: str | Path | Iterable[np.ndarray], *, score_thr: float = 0.5,
               max_frames: int | None = None) -> Iterator[FrameResult]:
        """Online results frame by frame; ``src`` is a video file, a frame folder or an iterable of
        (H, W, 3) uint8 RGB arrays. Tracks scoring below ``score_thr`` on a frame are left out of it."""
        from spvis.data import open_frame_source
        from spvis.engine.streaming import OnlineTracker

        name = "<frames>"
        if isinstance(src, (str, Path)):
            if not Path(src).exists():
                raise SpvisError(f"{src}: no such video file or frame folder")
            name, src = str(src), open_frame_source(src, max_frames=max_frames)
        engine = OnlineTracker(self.model, self.cfg, score_thr=score_thr)
        yield from engine.stream(islice(iter(src), max_frames), source=name)

    def init_state(self) -> "OnlineState":
        """A fresh online state for one video (TEST.TRACKER, TEST.SNAP_IOU and the precision of this segmenter);
        ``step`` advances it. ``state.state_dict()`` is plain tensors and numbers for ``torch.save``;
        ``OnlineState.from_state_dict(torch.load(path, weights_only=True))`` restores it."""
        from spvis.engine.streaming import online_state

        return online_state(self.model, self.cfg)

    def step(self, state: "OnlineState", frame: np.ndarray, *, score_thr: float = 0.5) -> FrameResult:
        """Track one (H, W, 3) uint8 RGB frame of the state's video: its FrameResult (tracks scoring >=
        ``score_thr`` on it), equal to what ``stream`` yields for that frame. The state advances in place."""
        from spvis.engine.streaming import check_frame, frame_result

        check_frame(frame, state.frame_index, None if state.frame_size is None else tuple(state.frame_size), "<frame>")
        return frame_result(self.model.track_frame(state, frame).to_host(), score_thr)

    def predict(self, src: str | Path, *, mode: str = "online", max_memory_gb: float | None = None,
                allow_truncated: bool = False) -> VideoResult:
        """One video (file or frame folder) end to end: benchmark-format entries, one per track and class.

        A video that breaks off (a cut file, a bad frame) is an SpvisError naming the file, as in ``spvis infer``;
        ``allow_truncated`` returns the frames before the break instead (``result.truncated`` / ``.error``)."""
        if mode not in ("online", "offline"):
            raise SpvisError(f"mode must be online or offline, got {mode!r}")
        if not Path(src).exists():
            raise SpvisError(f"{src}: no such video file or frame folder")
        job = next(iter_jobs(str(src), None, self.cfg, None, allow_truncated))
        return run_video(self.model, self.cfg, job, mode=mode, out_dir=None, score_thr=0.0, max_frames=None,
                         max_memory_gb=max_memory_gb, allow_truncated=allow_truncated)

    def predict_dataset(self, json_path: str | Path, image_root: str | Path | None = None, *,
                        mode: str = "online", allow_truncated: bool = False) -> list[dict]:
        """Every video of a YouTube-VIS/OVIS json; the entries of a results.json (``spvis.evaluate`` scores it).
        ``allow_truncated`` as in ``predict``."""
        entries: list[dict] = []
        for job in iter_jobs(str(json_path), None if image_root is None else str(image_root), self.cfg, None,
                             allow_truncated):
            entries.extend(run_video(self.model, self.cfg, job, mode=mode, out_dir=None, score_thr=0.0,
                                     max_frames=None, allow_truncated=allow_truncated).entries)
        return entries

    def save_pretrained(self, folder: str | Path, *, recipe: str = "") -> Path:
        """Write a model folder (model.safetensors, config.yaml, MODEL_CARD.md) that ``spvis.load`` reads."""
        from spvis.checkpoints.io import save_weights
        from spvis.checkpoints.model_card import write_model_card

        folder = Path(folder)
        if folder.suffix == ".safetensors" or folder.is_file():
            raise SpvisError(f"{folder}: save_pretrained writes a folder, not a file")
        weights = save_weights(folder, self.model, self.cfg)
        write_model_card(folder, self.cfg, recipe=recipe or "see the config")
        return weights
