"""``spvis.load`` and ``VideoSegmenter``: the Python front end over the inference engines.

One object holds a model and its config and offers what the CLI does: ``stream`` (online, a FrameResult
per frame, flat memory), ``predict`` (one video, online or offline, a VideoResult), ``predict_dataset``
(every video of a YouTube-VIS json) and ``save_pretrained`` (a model folder with a model card); and, SAM 2 style,
an explicit state: ``state = segmenter.init_state()``, then ``segmenter.step(state, frame)`` per frame (the same
FrameResults as ``stream``; ``state.state_dict()`` / ``OnlineState.from_state_dict`` save and restore a video).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from spvis.engine.frame_result import FrameResult, VideoResult
from spvis.engine.inference import class_names_for, iter_jobs, load_model, run_video
from spvis.errors import SpvisError

if TYPE_CHECKING:
    from spvis.modeling.inference import OnlineState


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
        from spvis.data.frame_source import limit_frames
        from spvis.engine.streaming import OnlineTracker

        self._warn_domain(src)
        name = "<frames>"
        if isinstance(src, (str, Path)):
            if not Path(src).exists():
                raise SpvisError(f"{src}: no such video file or frame folder")
            name, src = str(src), open_frame_source(src, max_frames=max_frames)
        engine = OnlineTracker(self.model, self.cfg, score_thr=score_thr, keep_frames=True)  # for .plot()
        names = self.names
        for result in engine.stream(limit_frames(src, max_frames), source=name):
            result.names = names
            yield result

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
        result = frame_result(self.model.track_frame(state, frame).to_host(), score_thr, frame)  # for .plot()
        result.names = self.names
        return result

    def predict(self, src: str | Path, *, mode: str = "online", max_memory_gb: float | None = None,
                allow_truncated: bool = False) -> VideoResult:
        """One video (file or frame folder) end to end: benchmark-format entries, one per track and class.

        A video that breaks off (a cut file, a bad frame) is an SpvisError naming the file, as in ``spvis infer``;
        ``allow_truncated`` returns the frames before the break instead (``result.truncated`` / ``.error``)."""
        if mode not in ("online", "offline"):
            raise SpvisError(f"mode must be online or offline, got {mode!r}")
        if not Path(src).exists():
            raise SpvisError(f"{src}: no such video file or frame folder")
        self._warn_domain(src)
        job = next(iter_jobs(str(src), None, self.cfg, None, allow_truncated))
        return run_video(self.model, self.cfg, job, mode=mode, out_dir=None, score_thr=0.0, max_frames=None,
                         max_memory_gb=max_memory_gb, allow_truncated=allow_truncated)

    def iter_dataset(self, json_path: str | Path, image_root: str | Path | None = None, *,
                     mode: str = "online", allow_truncated: bool = False) -> Iterator[VideoResult]:
        """Every video of a YouTube-VIS/OVIS json, one VideoResult at a time (``VISEvaluator.process`` takes
        ``video.video_id, video.entries``). ``allow_truncated`` as in ``predict``."""
        self._warn_domain(json_path)
        for job in iter_jobs(str(json_path), None if image_root is None else str(image_root), self.cfg, None,
                             allow_truncated):
            yield run_video(self.model, self.cfg, job, mode=mode, out_dir=None, score_thr=0.0, max_frames=None,
                            allow_truncated=allow_truncated)

    def predict_dataset(self, json_path: str | Path, image_root: str | Path | None = None, *,
                        mode: str = "online", allow_truncated: bool = False) -> list[dict]:
        """Every video of a YouTube-VIS/OVIS json; the entries of a results.json (``spvis.evaluate`` scores it).
        ``allow_truncated`` as in ``predict``."""
        return [entry for video in self.iter_dataset(json_path, image_root, mode=mode, allow_truncated=allow_truncated)
                for entry in video.entries]

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
