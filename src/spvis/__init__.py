"""SPVIS: video instance segmentation with a Progressive Tracker and Joint Feature-Preserving refinement.

The public Python API (imported lazily, so ``import spvis`` stays light)::

    import spvis
    segmenter = spvis.load("demo")                 # or a .safetensors file / model folder
    for result in segmenter.stream("video.mp4"):   # or a frame folder, or an iterable of RGB arrays
        print(result.frame_index, result.track_ids, [segmenter.names[k] for k in result.labels])
    video = segmenter.predict("video.mp4", mode="offline")       # VideoResult: benchmark-format entries
    metrics = spvis.evaluate("valid.json", "results.json")
    costs = spvis.analyze("valid.json", "results.json")         # AP points each error type costs
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load": "spvis.predictor",
    "list_models": "spvis.predictor",
    "VideoSegmenter": "spvis.predictor",
    "OnlineState": "spvis.modeling.inference",
    "train": "spvis.engine.launch",
    "load_model": "spvis.engine.inference",
    "iter_jobs": "spvis.engine.inference",
    "run_video": "spvis.engine.inference",
    "BUILTIN_WEIGHTS": "spvis.engine.inference",
    "OnlineTracker": "spvis.engine.streaming",
    "run_offline": "spvis.engine.offline",
    "FrameResult": "spvis.engine.frame_result",
    "VideoResult": "spvis.engine.frame_result",
    "open_frame_source": "spvis.data",
    "load_video_dataset": "spvis.data",
    "generate_synthetic_dataset": "spvis.data.synth",
    "evaluate": "spvis.evaluation",
    "VISEvaluator": "spvis.evaluation",
    "analyze": "spvis.report.error_costs",
    "write_results": "spvis.evaluation",
    "load_config": "spvis.config",
    "get_cfg": "spvis.config",
    "SPVISModel": "spvis.modeling.meta_arch",
    "save_weights": "spvis.checkpoints",
    "load_weights": "spvis.checkpoints",
    "SpvisError": "spvis.errors",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'spvis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
