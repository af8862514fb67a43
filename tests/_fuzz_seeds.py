"""The fuzz suite's valid inputs, made by the tests themselves (a few KB each): a 2-video synthetic dataset, its
results json and zip, tiny weights (.safetensors + yaml), a training config, a tiny official DVIS config with its
.pth and .pkl, JPEG and PNG frame folders and an mp4."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import yaml

from _fuzz_mutate import encode_image, zip_with
from test_reliability import TINY  # a model of a few thousand parameters, 3 classes like the dataset below

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
# official (detectron2) keys set to tiny sizes in the bundle's dumped DVIS config
OFFICIAL_TINY = {
    "MODEL.META_ARCHITECTURE": "DVIS_online", "MODEL.BACKBONE.NAME": "D2SwinTransformer",
    "MODEL.SWIN.EMBED_DIM": 8, "MODEL.SWIN.DEPTHS": [1, 1, 1, 1], "MODEL.SWIN.NUM_HEADS": [1, 1, 1, 1],
    "MODEL.SWIN.DROP_PATH_RATE": 0.0, "MODEL.SEM_SEG_HEAD.CONVS_DIM": 32, "MODEL.SEM_SEG_HEAD.MASK_DIM": 32,
    "MODEL.SEM_SEG_HEAD.NUM_CLASSES": 3, "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS": 1,
    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS": 2,
    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS": 2, "MODEL.MASK_FORMER.HIDDEN_DIM": 32,
    "MODEL.MASK_FORMER.NHEADS": 2, "MODEL.MASK_FORMER.DIM_FEEDFORWARD": 32, "MODEL.MASK_FORMER.DEC_LAYERS": 2,
    "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES": 4, "MODEL.TRACKER.DECODER_LAYERS": 1,
    "MODEL.REFINER.DECODER_LAYERS": 1,
}
FRAME_SIZE = (32, 48)  # height, width of every frame


def _frames(count: int, seed: int) -> list[np.ndarray]:
    """``count`` smooth RGB frames (a moving square on a gradient; JPEG-friendly)."""
    height, width = FRAME_SIZE
    rng = np.random.default_rng(seed)
    base = np.zeros((height, width, 3), np.uint8)
    base[..., 0] = np.linspace(0, 200, width, dtype=np.uint8)[None]
    base[..., 2] = np.linspace(0, 150, height, dtype=np.uint8)[:, None]
    out = []
    for t in range(count):
        frame = base.copy()
        y, x = 6 + t, 10 + 3 * t
        frame[y: y + 10, x: x + 12] = rng.integers(150, 255, 3, dtype=np.uint8)
        out.append(frame)
    return out


def _set_dotted(tree: dict, dotted: str, value) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def _official_key(key: str) -> str:
    """The official Swin name of one of our keys: timm opens stage s+1 with the downsample that closes stage s
    in the official layout (``spvis.checkpoints.keymaps`` maps the other way)."""
    match = re.match(r"^backbone\.layers\.(\d+)\.downsample\.", key)
    if not match:
        return key
    return f"backbone.layers.{int(match.group(1)) - 1}.downsample." + key[match.end():]


def build_seeds(root: Path) -> dict[str, Path]:
    """Write every valid input under ``root``; returns their paths by name."""
    import torch

    from spvis.checkpoints import save_weights
    from spvis.checkpoints.official_config import official_to_cfg
    from spvis.config import load_config
    from spvis.data.synth import generate_synthetic_dataset
    from spvis.modeling.meta_arch import SPVISModel

    seeds: dict[str, Path] = {}
    info = generate_synthetic_dataset(root / "synth", videos=2, frames=3, size=FRAME_SIZE, categories=3,
                                      max_objects=2, valid_fraction=0.0, seed=3)
    seeds["dataset"] = Path(info["train_json"])
    seeds["image_root"] = Path(info["train_image_root"])

    gt = json.loads(seeds["dataset"].read_text())
    results = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": round(0.9 - 0.1 * k, 2),
                "segmentations": a["segmentations"]} for k, a in enumerate(gt["annotations"])]
    seeds["results"] = root / "results.json"
    seeds["results"].write_text(json.dumps(results))
    seeds["results_zip"] = root / "results.zip"
    seeds["results_zip"].write_bytes(zip_with({"results.json": seeds["results"].read_bytes()}))

    cfg = load_config(REPO / "configs" / "synth" / "Base-synth.yaml", TINY)
    torch.manual_seed(0)
    seeds["weights"] = save_weights(root / "tiny" / "tiny.safetensors", SPVISModel.from_config(cfg), cfg)
    seeds["weights_yaml"] = seeds["weights"].with_suffix(".yaml")

    train = {
        "STAGE": "segmenter",
        "MODEL": {"DEVICE": "cpu", "NUM_CLASSES": 3, "BACKBONE": {"NAME": "tiny", "WIDTH": 8},
                  "PIXEL_DECODER": {"CONV_DIM": 32, "MASK_DIM": 32, "ENC_LAYERS": 1, "ENC_FFN": 64},
                  "DECODER": {"HIDDEN_DIM": 32, "NUM_QUERIES": 6, "DIM_FEEDFORWARD": 64, "DEC_LAYERS": 1},
                  "TRACKER": {"ENABLED": False, "DECODER_LAYERS": 1}, "LOSS": {"TRAIN_NUM_POINTS": 64}},
        "INPUT": {"MIN_SIZE_TRAIN": [32], "MAX_SIZE_TRAIN": 48, "MIN_SIZE_TEST": 32, "MAX_SIZE_TEST": 48,
                  "SAMPLING_FRAME_NUM": 1, "SAMPLING_FRAME_RANGE": 0, "RANDOM_FLIP": True},
        "DATASETS": {"TRAIN": [str(seeds["dataset"])], "TEST": []},
        "DATALOADER": {"NUM_WORKERS": 0},
        "SOLVER": {"MAX_ITER": 0, "IMS_PER_BATCH": 1, "CLIPS_PER_DEVICE": 1, "BASE_LR": 0.0005, "STEPS": [100],
                   "WARMUP_ITERS": 0, "CPU_THREADS": 1, "CHECKPOINT_PERIOD": 100, "LOG_PERIOD": 20,
                   "AMP": False},
        "TEST": {"MAX_NUM": 10, "WINDOW_SIZE": 3, "EVAL_PERIOD": 0},
        "SEED": 0,
    }
    seeds["train_yaml"] = root / "train.yaml"
    seeds["train_yaml"].write_text(yaml.safe_dump(train, sort_keys=False))

    official = yaml.safe_load((TESTS / "data" / "dvis_official_tiny" / "config.yaml").read_text())
    for dotted, value in OFFICIAL_TINY.items():
        _set_dotted(official, dotted, value)
    seeds["official_yaml"] = root / "official" / "config.yaml"
    seeds["official_yaml"].parent.mkdir()
    seeds["official_yaml"].write_text(yaml.safe_dump(official, sort_keys=False))
    torch.manual_seed(1)
    model = SPVISModel.from_config(official_to_cfg(seeds["official_yaml"], fmt="dvis"))
    state = {_official_key(key): value.detach().numpy().copy() for key, value in model.state_dict().items()}
    seeds["official_state"] = root / "official" / "state.npz"  # the arrays the .pkl/.pth mutations start from
    np.savez(seeds["official_state"], **state)
    seeds["official_pkl"] = root / "official" / "model.pkl"
    seeds["official_pkl"].write_bytes(pickle.dumps({"model": state, "__author__": "fuzz"}, protocol=2))
    seeds["official_pth"] = root / "official" / "model.pth"
    torch.save({"model": {key: torch.from_numpy(value) for key, value in state.items()}, "iteration": 7},
               seeds["official_pth"])

    for name, fmt in (("frames_jpg", "JPEG"), ("frames_png", "PNG")):
        folder = root / name / "clip"
        folder.mkdir(parents=True)
        for t, frame in enumerate(_frames(3, seed=5)):
            (folder / f"{t:05d}.{'jpg' if fmt == 'JPEG' else 'png'}").write_bytes(encode_image(frame, fmt))
        seeds[name] = folder

    seeds["video"] = root / "video.mp4"
    _write_mp4(seeds["video"], _frames(4, seed=6))
    return seeds


def _write_mp4(path: Path, frames: list[np.ndarray]) -> None:
    """A small h264 (or mpeg4) mp4 with the moov atom first, as cameras and web videos often have it."""
    import av

    from spvis.viz.video_writer import available_encoder

    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream(available_encoder(), rate=10)
        stream.height, stream.width = FRAME_SIZE
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
