"""Fuzz suite (issue 33): seeded mutations of a valid input of every format the CLI reads, each run through the
``spvis`` command that reads it.

Formats and commands: dataset json (``data check``, ``infer``, ``eval --gt``), results json and server zip
(``eval --pred``), training YAML (``train --config``), official detectron2 yaml, ``.pkl`` and ``.pth``
(``checkpoint import``), ``.safetensors`` weights and the YAML beside them (``infer --weights``), JPEG/PNG frames
(``infer`` on a folder, ``data check --all-frames``) and mp4 (``infer``).

Every case must end with exit code 2 and exactly one ``spvis ...: error:`` line naming the mutated file (and the
field, where the mutation touched one), no traceback and no new file in the case folder; or with exit code 0 when
the mutation may have left the input valid. A mutation is "must fail" only where a rule below says the input is
certainly invalid. Each case has a time limit and runs in a worker process with a memory cap (``_fuzz_worker``).

``spvis train`` cases run with ``SOLVER.MAX_ITER=0``, which the trainer refuses right after the config checks and
before OUTPUT_DIR is made: a mutated config that is still valid ends there ("the gate") instead of training.

Size: ``SPVIS_FUZZ_CASES`` cases (default 520, about a minute on one thread); ``SPVIS_FUZZ_CASES=5000`` is the
slow mode. ``SPVIS_FUZZ_SEED`` shifts every case to another seed.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

import _fuzz_mutate as fm
from _fuzz_seeds import REPO, build_seeds

NUM_CASES = int(os.environ.get("SPVIS_FUZZ_CASES", "520"))
SEED_SHIFT = int(os.environ.get("SPVIS_FUZZ_SEED", "0"))
CASE_TIMEOUT_S = float(os.environ.get("SPVIS_FUZZ_TIMEOUT", "60"))  # generous: CI machines are shared
START_TIMEOUT_S = 60.0  # a new worker's own start (importing torch and spvis) on top of its first case's time
MEMORY_GB = 3.0  # address space a case may add to the worker's
MAX_RSS_MB = 2500  # growth of the worker's peak resident memory over all cases (from torch and spvis imported)
GATE = "config key SOLVER.MAX_ITER must be at least 1, got 0"  # the valid outcome of a train case
ERROR_LINE = re.compile(r"^spvis [a-z]+( [a-z]+)?( \(rank \d+\))?: error: ")


@dataclass
class Case:
    """One command line over one mutated file."""

    argv: list[str]
    mutant: fm.Mutant
    file: Path  # the mutated file (its name must appear in the error)
    target: str


# ============================================================================================= validity rules
# Dataset json: exact paths ("*" = any list index) whose mutation by these kinds leaves the file invalid for every
# reader (data check, infer, eval --gt), and the field name the error must give.
_ALL = {"delete", "type", "nest", "nan", "duplicate", "empty", "deep"}
_SIZE = _ALL | {"negative", "zero", "huge"}
DATASET_RULES: dict[tuple, tuple[str, set[str]]] = {
    ("videos",): ("videos", _ALL),
    ("videos", "*"): ("videos", {"type", "nest", "empty", "deep"}),
    ("videos", "*", "id"): ("id", _ALL),
    ("videos", "*", "file_names"): ("file_names", _ALL),
    ("videos", "*", "file_names", "*"): ("file_names", {"type", "nest"}),
    ("videos", "*", "height"): ("height", _SIZE),
    ("videos", "*", "width"): ("width", _SIZE),
    ("videos", "*", "length"): ("length", {"type", "nest", "nan", "negative", "zero", "huge"}),
    ("categories",): ("categories", _ALL - {"empty"}),
    ("categories", "*"): ("categories", {"type", "nest", "empty", "deep"}),
    ("categories", "*", "id"): ("id", _ALL),
    ("annotations",): ("annotations", {"nest", "deep"}),  # null (one of the "type" values) means "no annotations"
    ("annotations", "*"): ("annotations", {"type", "nest", "empty", "deep"}),
    ("annotations", "*", "id"): ("id", _ALL),
    ("annotations", "*", "video_id"): ("video_id", _ALL | {"zero", "negative", "huge"}),
    ("annotations", "*", "category_id"): ("category_id", _ALL | {"zero", "negative", "huge"}),
    ("annotations", "*", "segmentations"): ("segmentations", _ALL),
}
# Results json entries (the leading "*" is the entry index).
RESULTS_RULES: dict[tuple, tuple[str, set[str]]] = {
    (): ("", {"type", "deep"}),
    ("*",): ("", {"type", "nest", "empty", "deep"}),
    ("*", "video_id"): ("video_id", _ALL | {"zero", "negative", "huge"}),
    ("*", "category_id"): ("category_id", _ALL | {"zero", "negative", "huge"}),
    ("*", "score"): ("score", _ALL - {"duplicate", "empty"}),
    ("*", "segmentations"): ("segmentations", _ALL),
    ("*", "segmentations", "*", "size"): ("segmentations", _ALL),
    ("*", "segmentations", "*", "size", "*"): ("segmentations", _SIZE - {"delete"}),
    ("*", "segmentations", "*", "counts"): ("segmentations", {"delete", "type", "nest", "deep"}),
}
# Official detectron2 yaml: keys the importer reads without a default (any change breaks the import: a refused
# value, or weights that no longer fit); the mutations of other keys may pass.
OFFICIAL_READ = [
    "MODEL.BACKBONE.NAME", "MODEL.SWIN.EMBED_DIM", "MODEL.SWIN.DEPTHS", "MODEL.SWIN.NUM_HEADS",
    "MODEL.SWIN.PATCH_SIZE", "MODEL.SWIN.OUT_FEATURES", "MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME",
    "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "MODEL.SEM_SEG_HEAD.MASK_DIM",
    "MODEL.SEM_SEG_HEAD.IN_FEATURES", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS",
    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS",
    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS", "MODEL.MASK_FORMER.DEC_LAYERS",
    "MODEL.MASK_FORMER.HIDDEN_DIM", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "MODEL.MASK_FORMER.DIM_FEEDFORWARD",
    "MODEL.MASK_FORMER.PRE_NORM", "MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ", "MODEL.META_ARCHITECTURE",
    "MODEL.TRACKER.DECODER_LAYERS", "MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD",
]


def _pattern(path: tuple) -> tuple:
    return tuple("*" if isinstance(part, int) else part for part in path)


def _rule_verdict(rules: dict, path: tuple, kind: str) -> tuple[bool, str | None]:
    """(must_fail, field) of a tree mutation under ``rules``; the deep-nesting mutation always fails."""
    if kind == "deep":
        return True, None
    rule = rules.get(_pattern(path))
    if rule is None:
        return False, None
    field, kinds = rule
    # a duplicated or emptied list is refused through what it breaks (a duplicate id, an unknown reference), which
    # names the field of that entry instead
    return kind in kinds, (field or None) if kind not in ("duplicate", "empty") else None


def _schema_key(path: tuple):
    """The config schema's ``Key`` for a yaml path (None: a section, a list element or an unknown key)."""
    from spvis.config.defaults import SCHEMA
    from spvis.config.node import Key

    node: Any = SCHEMA
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Key) else None


def _config_verdict(doc: Any, path: tuple, kind: str) -> tuple[bool, str | None]:
    """(must_fail, field) of a mutation of our yaml config at ``path`` (the schema decides)."""
    from spvis.config.defaults import SCHEMA

    field = ".".join(str(p) for p in path if isinstance(p, str)) or None
    if kind in ("deep", "unknown_key"):
        return True, None if kind == "deep" else field
    if not path or any(isinstance(p, int) for p in path):
        return kind in ("type",) and not path, field
    key = _schema_key(path)
    if key is None:  # a section (a mapping in the schema)
        node: Any = SCHEMA
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return (isinstance(node, dict) and kind in ("type", "nest")), field
    if kind in ("type", "nest", "nan"):
        return True, field
    if kind in ("negative", "zero"):
        value = -1 if kind == "negative" else 0
        bad = (key.low is not None and value < key.low) or (key.positive and value <= 0)
        return bad, field
    if kind == "huge":  # every huge value (2**31 and up, or below -2**63) is outside a bounded key's range
        return key.high is not None, field
    if kind in ("duplicate", "empty"):
        return key.length is not None, field
    if kind == "unicode" and key.choices is not None:
        return not any(isinstance(c, str) and c.endswith("*") for c in key.choices), field
    return False, field


# ============================================================================================= mutators
def _tree_mutant(doc: Any, rng: random.Random, verdict: Callable[[Any, tuple, str], tuple[bool, str | None]],
                 dump: Callable[[Any], bytes], paths: list[tuple] | None = None) -> fm.Mutant:
    new, kind, path = fm.mutate_tree(doc, rng, paths)
    must_fail, field = verdict(doc, path, kind)
    try:
        data = dump(new)
    except (UnicodeError, yaml.YAMLError):  # a lone surrogate yaml cannot write: use a plain unicode string
        new, kind, path = fm.mutate_tree(doc, rng, paths)
        must_fail, field = verdict(doc, path, kind)
        data = dump(new)
    return fm.Mutant(data, must_fail, field, f"{kind} at {'/'.join(map(str, path)) or '<top>'}")


def _bytes_mutant(data: bytes, rng: random.Random, must_fail_kinds: set[str],
                  kinds: list[str] | None = None) -> fm.Mutant:
    new, kind = fm.mutate_bytes(data, rng, kinds)
    must_fail = kind in must_fail_kinds and new != data
    return fm.Mutant(new, must_fail, None, f"bytes {kind}")


_TEXT_MUST_FAIL = {"truncate", "empty", "garbage"}  # json/yaml text: a cut document, no document, not text


def json_mutant(path: Path, rng: random.Random, rules: dict) -> fm.Mutant:
    """A mutation of the json file at ``path``: a quarter byte-level, the rest in its tree (``rules`` decide)."""
    raw = path.read_bytes()
    if rng.random() < 0.25:
        mutant = _bytes_mutant(raw, rng, _TEXT_MUST_FAIL)
        if mutant.what == "bytes truncate" and not mutant.data.strip():
            mutant.must_fail = True
        return mutant
    return _tree_mutant(json.loads(raw), rng, lambda doc, p, k: _rule_verdict(rules, p, k), fm.dump_json)


def yaml_config_mutant(path: Path, rng: random.Random) -> fm.Mutant:
    """A mutation of our yaml config at ``path``: a fifth byte-level, the rest in its tree (the schema decides)."""
    raw = path.read_bytes()
    if rng.random() < 0.2:
        # a cut yaml may still be valid (a shorter mapping); garbage bytes are not a mapping
        return _bytes_mutant(raw, rng, {"garbage"}, ["truncate", "flip", "insert", "zero_range", "garbage", "bom",
                                                     "duplicate", "empty"])
    return _tree_mutant(yaml.safe_load(raw), rng, _config_verdict, fm.dump_yaml)


# ============================================================================================= targets
def _dataset_json(rng, case_dir, seeds) -> tuple[Path, fm.Mutant]:
    mutant = json_mutant(seeds["dataset"], rng, DATASET_RULES)
    path = case_dir / "train.json"
    path.write_bytes(mutant.data)
    return path, mutant


def target_check_json(rng, case_dir, seeds) -> Case:
    path, mutant = _dataset_json(rng, case_dir, seeds)
    return Case(["data", "check", "--json", str(path), "--image-root", str(seeds["image_root"])], mutant, path,
                "check-json")


def target_infer_json(rng, case_dir, seeds) -> Case:
    path, mutant = _dataset_json(rng, case_dir, seeds)
    return Case(["infer", "--input", str(path), "--image-root", str(seeds["image_root"]), "--weights",
                 str(seeds["weights"]), "--out", str(case_dir / "out"), "--no-overlay"], mutant, path, "infer-json")


def target_eval_gt(rng, case_dir, seeds) -> Case:
    mutant = json_mutant(seeds["dataset"], rng, DATASET_RULES)
    gt = case_dir / "gt.json"
    gt.write_bytes(mutant.data)
    pred = case_dir / "results.json"
    shutil.copy(seeds["results"], pred)
    return Case(["eval", "--gt", str(gt), "--pred", str(pred)], mutant, gt, "eval-gt")


def target_eval_pred(rng, case_dir, seeds) -> Case:
    mutant = json_mutant(seeds["results"], rng, RESULTS_RULES)
    pred = case_dir / "results.json"
    pred.write_bytes(mutant.data)
    return Case(["eval", "--gt", str(seeds["dataset"]), "--pred", str(pred)], mutant, pred, "eval-pred")


def target_eval_zip(rng, case_dir, seeds) -> Case:
    raw = seeds["results_zip"].read_bytes()
    choice = rng.random()
    if choice < 0.4:
        inner = json_mutant(seeds["results"], rng, RESULTS_RULES)
        mutant = fm.Mutant(fm.zip_with({"results.json": inner.data}), inner.must_fail, inner.field,
                           "zipped " + inner.what)
    elif choice < 0.75:
        mutant = _bytes_mutant(raw, rng, {"truncate", "empty", "garbage"})  # a prefix is allowed (self-extracting zips)
    else:
        inner = seeds["results"].read_bytes()
        kind = rng.choice(["renamed", "in_folder", "extra", "stored", "two", "empty_member", "only_other"])
        members = {"renamed": {"result.json": inner}, "in_folder": {"sub/results.json": inner},
                   "extra": {"results.json": inner, "notes.txt": b"x"}, "stored": {"results.json": inner},
                   "two": {"a.json": inner, "results.json": inner}, "empty_member": {"results.json": b""},
                   "only_other": {"other.bin": bytes(100)}}[kind]
        compression = zipfile.ZIP_STORED if kind == "stored" else zipfile.ZIP_DEFLATED
        mutant = fm.Mutant(fm.zip_with(members, compression), kind in ("renamed", "in_folder", "empty_member",
                                                                       "only_other"), None, f"zip {kind}")
    pred = case_dir / "results.zip"
    pred.write_bytes(mutant.data)
    return Case(["eval", "--gt", str(seeds["dataset"]), "--pred", str(pred)], mutant, pred, "eval-zip")


def target_train_yaml(rng, case_dir, seeds) -> Case:
    mutant = yaml_config_mutant(seeds["train_yaml"], rng)
    path = case_dir / "train.yaml"
    path.write_bytes(mutant.data)
    return Case(["train", "--config", str(path), "SOLVER.MAX_ITER=0", f"OUTPUT_DIR={case_dir / 'out'}"], mutant,
                path, "train-yaml")


def target_import_yaml(rng, case_dir, seeds) -> Case:
    raw = seeds["official_yaml"].read_bytes()
    doc = yaml.safe_load(raw)
    read = [tuple(k.split(".")) for k in OFFICIAL_READ]
    if rng.random() < 0.15:
        mutant = _bytes_mutant(raw, rng, {"garbage"}, ["truncate", "flip", "insert", "garbage", "bom", "empty"])
    else:
        paths = read if rng.random() < 0.7 else None

        def verdict(_doc, path, kind):
            """Any change of a key the importer reads breaks the import (a refused value, or weights that no longer
            fit); a string made unicode may still name something valid only by accident, so it may pass too."""
            if kind == "deep" or (not path and kind == "type"):
                return True, None
            if path in read and kind not in ("unicode", "unknown_key"):
                # a zero or a list of another length may be a valid value that no longer fits the weights: the
                # error then names the weights' keys, not this field
                return True, path[-1] if kind not in ("zero", "duplicate", "empty") else None
            return False, None

        mutant = _tree_mutant(doc, rng, verdict, fm.dump_yaml, paths)
    path = case_dir / "config.yaml"
    path.write_bytes(mutant.data)
    return Case(["checkpoint", "import", str(seeds["official_pth"]), "--format", "dvis", "--official-config",
                 str(path), "--out", str(case_dir / "out.safetensors")], mutant, path, "import-yaml")


def _official_state(seeds) -> dict[str, np.ndarray]:
    with np.load(seeds["official_state"]) as arrays:
        return {key: arrays[key] for key in arrays.files}


class _Exploit:
    """Unpickling this would run a shell command (the .pkl reader must refuse it by name)."""

    def __reduce__(self):
        return (os.system, ("echo fuzz-pwned",))


def _weights_target(rng, case_dir, seeds, suffix: str) -> Case:
    seed_file = seeds["official_pkl" if suffix == ".pkl" else "official_pth"]
    choice = rng.random()
    if choice < 0.5:
        obj, kind, key, must_fail = fm.mutate_state(_official_state(seeds), rng)
        data = fm.pickle_bytes(obj) if suffix == ".pkl" else fm.torch_bytes(obj)
        mutant = fm.Mutant(data, must_fail, key if kind in ("delete", "rename", "shape", "nan") else None,
                           f"state {kind} {key}")
    elif choice < 0.9:
        mutant = _bytes_mutant(seed_file.read_bytes(), rng, {"truncate", "empty", "garbage", "zero_tail"})
    else:
        state: dict[str, Any] = dict(_official_state(seeds))
        state[sorted(state)[0]] = _Exploit()
        data = fm.pickle_bytes(state) if suffix == ".pkl" else fm.torch_bytes(state)
        mutant = fm.Mutant(data, True, None, "code in the pickle")
    path = case_dir / f"model{suffix}"
    path.write_bytes(mutant.data)
    return Case(["checkpoint", "import", str(path), "--format", "dvis", "--official-config",
                 str(seeds["official_yaml"]), "--out", str(case_dir / "out.safetensors")], mutant, path,
                f"import-{suffix[1:]}")


def target_import_pkl(rng, case_dir, seeds) -> Case:
    return _weights_target(rng, case_dir, seeds, ".pkl")


def target_import_pth(rng, case_dir, seeds) -> Case:
    return _weights_target(rng, case_dir, seeds, ".pth")


def _tiny_state(seeds) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return dict(load_file(str(seeds["weights"])))


def target_infer_safetensors(rng, case_dir, seeds) -> Case:
    raw = seeds["weights"].read_bytes()
    choice = rng.random()
    if choice < 0.35:
        obj, kind, key, must_fail = fm.mutate_state(_tiny_state(seeds), rng)
        if not isinstance(obj, dict) or any(not isinstance(v, np.ndarray) for v in obj.values()):
            obj, kind, key, must_fail = {}, "empty", None, True  # safetensors can only hold arrays
        if kind == "dtype" and obj[key].dtype == np.bool_:
            must_fail = False
        mutant = fm.Mutant(fm.safetensors_bytes(obj), must_fail,
                           key if kind in ("delete", "rename", "shape", "nan") else None, f"state {kind} {key}")
    elif choice < 0.7:
        header, body = fm.split_safetensors(raw)

        def verdict(_doc, path, kind):
            if not path or path[0] == "__metadata__":
                return kind == "deep" or (not path and kind in ("type",)), None
            if len(path) == 1:  # a whole tensor entry
                return kind in ("delete", "type", "nest", "empty", "deep"), None
            if path[1] in ("dtype", "shape", "data_offsets") and len(path) == 2:
                return kind in ("delete", "type", "nest", "empty", "deep", "duplicate"), None
            if path[1] in ("shape", "data_offsets") and len(path) == 3:
                return kind in ("type", "nest", "negative", "huge", "nan", "deep"), None
            return kind == "deep", None

        mutant = _tree_mutant(header, rng, verdict, lambda doc: fm.join_safetensors(fm.dump_json(doc), body))
    else:
        mutant = _bytes_mutant(raw, rng, {"truncate", "empty", "garbage", "bom"})
    path = case_dir / "w.safetensors"
    path.write_bytes(mutant.data)
    shutil.copy(seeds["weights_yaml"], case_dir / "w.yaml")
    return Case(["infer", "--input", str(seeds["frames_jpg"]), "--weights", str(path), "--out",
                 str(case_dir / "out"), "--no-overlay"], mutant, path, "infer-safetensors")


def target_infer_weights_yaml(rng, case_dir, seeds) -> Case:
    mutant = yaml_config_mutant(seeds["weights_yaml"], rng)
    shutil.copy(seeds["weights"], case_dir / "w.safetensors")
    path = case_dir / "w.yaml"
    path.write_bytes(mutant.data)
    return Case(["infer", "--input", str(seeds["frames_jpg"]), "--weights", str(case_dir / "w.safetensors"),
                 "--out", str(case_dir / "out"), "--no-overlay"], mutant, path, "infer-weights-yaml")


def frame_mutant(path: Path, rng: random.Random, *, in_dataset: bool) -> fm.Mutant:
    """A mutation of one frame file; ``in_dataset``: a json lists it (a missing file is then an error)."""
    from PIL import Image

    data = path.read_bytes()
    is_png = path.suffix == ".png"
    choice = rng.random()
    if choice < 0.5:
        must = {"truncate", "empty", "garbage", "bom", "zero_tail"}
        return _bytes_mutant(data, rng, must)
    if choice < 0.7:
        height, width = rng.choice([(8000, 8000), (65535, 65535), (0, 48), (32, 0), (16, 24), (64, 96)])
        if is_png:
            new = fm.patch_png_size(data, height, width, fix_crc=rng.random() < 0.5)
        else:
            new = fm.patch_jpeg_size(data, height, width) or b""
        return fm.Mutant(new, True, None, f"header size {height}x{width}")
    if choice < 0.85:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        mode = rng.choice(["L", "RGBA", "P", "CMYK", "I;16", "1"])
        image = Image.fromarray(rgb).convert("L" if mode == "I;16" else mode)
        if mode == "I;16":
            image = Image.fromarray((np.asarray(image).astype(np.uint16) * 257))
        # the format the mode can be written in (PIL picks the decoder from the content, not the name)
        fmt = "JPEG" if mode == "CMYK" else "PNG" if is_png or mode in ("RGBA", "P", "I;16", "1") else "JPEG"
        import io

        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        return fm.Mutant(buffer.getvalue(), False, None, f"valid {mode} {fmt} in a .{path.suffix[1:]} file")
    kind = rng.choice(["missing", "trailer", "directory"])
    if kind == "missing":
        return fm.Mutant(b"MISSING", in_dataset, None, "frame file removed")
    if kind == "directory":
        return fm.Mutant(b"DIRECTORY", in_dataset, None, "frame replaced by a folder")
    return fm.Mutant(data + b"\0" * 64 + b"CAMERA TRAILER", False, None, "bytes after the end marker")


def _apply_frame(path: Path, mutant: fm.Mutant) -> None:
    if mutant.data == b"MISSING":
        path.unlink()
    elif mutant.data == b"DIRECTORY":
        path.unlink()
        path.mkdir()
    else:
        path.write_bytes(mutant.data)


def _frames_target(rng, case_dir, seeds, name: str) -> Case:
    folder = shutil.copytree(seeds[name], case_dir / "clip")
    frame = rng.choice(sorted(folder.iterdir()))
    mutant = frame_mutant(frame, rng, in_dataset=False)
    _apply_frame(frame, mutant)
    argv = ["infer", "--input", str(folder), "--weights", str(seeds["weights"]), "--out", str(case_dir / "out")]
    if rng.random() < 0.85:  # the overlay (an mp4 encoder per case) is the slow part: a few cases keep it
        argv.append("--no-overlay")
    return Case(argv, mutant, frame, f"infer-{name}")


def target_infer_jpg(rng, case_dir, seeds) -> Case:
    return _frames_target(rng, case_dir, seeds, "frames_jpg")


def target_infer_png(rng, case_dir, seeds) -> Case:
    return _frames_target(rng, case_dir, seeds, "frames_png")


def target_check_frames(rng, case_dir, seeds) -> Case:
    root = shutil.copytree(seeds["image_root"], case_dir / "JPEGImages")
    frame = rng.choice(sorted(root.rglob("*.jpg")))
    mutant = frame_mutant(frame, rng, in_dataset=True)
    _apply_frame(frame, mutant)
    return Case(["data", "check", "--json", str(seeds["dataset"]), "--image-root", str(root), "--all-frames"],
                mutant, frame, "check-frames")


def target_infer_mp4(rng, case_dir, seeds) -> Case:
    mutant = _bytes_mutant(seeds["video"].read_bytes(), rng, {"truncate", "empty", "garbage", "bom"})
    path = case_dir / "v.mp4"
    path.write_bytes(mutant.data)
    return Case(["infer", "--input", str(path), "--weights", str(seeds["weights"]), "--out", str(case_dir / "out"),
                 "--no-overlay"], mutant, path, "infer-mp4")


# (target, share of the cases): cheap readers get more cases, the ones that run a model fewer
TARGETS: list[tuple[Callable[..., Case], int]] = [
    (target_check_json, 16), (target_eval_pred, 14), (target_eval_gt, 11), (target_eval_zip, 8),
    (target_train_yaml, 12), (target_check_frames, 10), (target_infer_json, 5), (target_import_pkl, 3),
    (target_import_pth, 3), (target_import_yaml, 3), (target_infer_safetensors, 5), (target_infer_weights_yaml, 2),
    (target_infer_jpg, 3), (target_infer_png, 2), (target_infer_mp4, 3),
]
_SCHEDULE = [target for target, share in TARGETS for _ in range(share)]


def case_ids(n: int) -> list[str]:
    """``<target>-<index>`` for n cases spread over the targets by their shares."""
    return [f"{_SCHEDULE[i % len(_SCHEDULE)].__name__[len('target_'):]}-{i}" for i in range(n)]


# ============================================================================================= the worker
class Worker:
    """The ``_fuzz_worker`` child process; started again after a case that hangs or kills it."""

    def __init__(self) -> None:
        self.process = None

    def start(self) -> None:
        from _fuzz_worker import start_worker

        self.process, request_fd, answer_fd = start_worker(MEMORY_GB)
        self.requests = os.fdopen(request_fd, "w", buffering=1)
        self.answers = os.fdopen(answer_fd, "r")

    def run(self, argv: list[str], cwd: Path, timeout: float) -> dict:
        if self.process is None:
            self.start()
            timeout += START_TIMEOUT_S
        request = {"argv": argv, "cwd": str(cwd), "stdout": str(cwd / ".stdout"), "stderr": str(cwd / ".stderr")}
        try:
            self.requests.write(json.dumps(request) + "\n")
            self.requests.flush()
            ready, _, _ = select.select([self.answers], [], [], timeout)
            line = self.answers.readline() if ready else ""
        except BrokenPipeError:
            ready, line = True, ""
        if line:
            return json.loads(line)
        self.stop()
        return {"code": None, "crash": "the worker died" if ready else f"no answer within {timeout:.0f} s (hang)",
                "maxrss_mb": 0}

    def stop(self) -> None:
        if self.process is not None:
            for handle in (self.requests, self.answers):
                try:
                    handle.close()
                except OSError:
                    pass
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    seeds = build_seeds(root / "seeds")
    before = _snapshot(root / "seeds")
    worker = Worker()
    yield root, seeds, worker
    worker.stop()
    assert _snapshot(root / "seeds") == before, "a case changed the shared valid inputs"


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` (hidden ones too) with its size and modification time."""
    out = {}
    for path in folder.rglob("*"):
        stat = path.lstat()
        out[str(path.relative_to(folder))] = (stat.st_size if path.is_file() else -1, stat.st_mtime_ns)
    return out


def _names_it_otherwise(case: Case, error: str) -> bool:
    """An error that rightly names something else than the mutated file: a train config key checked after loading
    (the dotted key is the field), or a frame file a mutated ``file_names`` entry points to."""
    if case.target == "train-yaml" and case.mutant.field and case.mutant.field.split(".")[-1] in error:
        return True
    return "file_names" in case.mutant.what


def check_outcome(case: Case, result: dict, stdout: str, stderr: str, new_files: list[str]) -> list[str]:
    """What is wrong with how the command treated ``case`` ([] when nothing)."""
    problems = []
    if result["crash"]:
        return [f"no clean exit: {result['crash'].strip().splitlines()[-1]}\n{result['crash']}"]
    code = result["code"]
    errors = [line for line in stderr.splitlines() if ERROR_LINE.match(line)]
    gated = case.target == "train-yaml" and code == 2 and len(errors) == 1 and GATE in errors[0]
    valid = code == 0 or gated
    if "Traceback" in stderr:
        problems.append("a traceback on stderr")
    if code not in (0, 2):
        problems.append(f"exit code {code}")
    if case.mutant.must_fail and valid:
        problems.append("accepted an input that is certainly invalid")
    if code == 2 and not gated:
        if len(errors) != 1:
            problems.append(f"{len(errors)} error lines instead of one")
        elif case.file.name not in errors[0] and not _names_it_otherwise(case, errors[0]):
            problems.append(f"the error does not name the file {case.file.name}")
        elif case.mutant.must_fail and case.mutant.field and case.mutant.field.split(".")[-1] not in errors[0]:
            problems.append(f"the error does not name the field {case.mutant.field!r}")
        # a dataset infer keeps the videos it finished before the bad one, to --resume (issue 33)
        kept = {"out", "out/results.jsonl", "out/results.settings.json"} if "finished videos are kept" in errors[0] \
            else set()
        if set(new_files) - kept:
            problems.append(f"new files after a refusal: {sorted(set(new_files) - kept)[:5]}")
    added = result["maxrss_mb"] - result.get("start_rss_mb", 0)
    if added > MAX_RSS_MB:
        problems.append(f"the worker's peak memory grew by {added:.0f} MB (> {MAX_RSS_MB} MB)")
    return problems


@pytest.mark.parametrize("case_id", case_ids(NUM_CASES))
def test_fuzz_case(case_id: str, fuzz_env) -> None:
    root, seeds, worker = fuzz_env
    name, index = case_id.rsplit("-", 1)
    target = globals()[f"target_{name}"]
    case_dir = root / "cases" / case_id
    case_dir.mkdir(parents=True)
    rng = random.Random(f"{name}:{int(index) + SEED_SHIFT}")
    case = target(rng, case_dir, seeds)
    before = set(_snapshot(case_dir))
    result = worker.run(case.argv, case_dir, CASE_TIMEOUT_S)
    stdout = (case_dir / ".stdout").read_text(errors="replace") if (case_dir / ".stdout").is_file() else ""
    stderr = (case_dir / ".stderr").read_text(errors="replace") if (case_dir / ".stderr").is_file() else ""
    new_files = sorted(p for p in set(_snapshot(case_dir)) - before - {".stdout", ".stderr"}
                       if not (case_dir / p).is_dir() or any((case_dir / p).iterdir()))
    problems = check_outcome(case, result, stdout, stderr, new_files)
    assert not problems, (f"{case.target}: {case.mutant.what} ({'must fail' if case.mutant.must_fail else 'may pass'}"
                          f"); exit {result['code']}\n  spvis {' '.join(case.argv)}\n  " + "\n  ".join(problems)
                          + f"\n--- stderr (last 1500 chars):\n{stderr[-1500:]}")
    shutil.rmtree(case_dir, ignore_errors=True)  # kept when the case failed, for a look


def test_fuzz_suite_has_every_format_and_enough_cases() -> None:
    """The default run covers every target with at least 500 cases, and a mutation of each kind of verdict."""
    ids = case_ids(NUM_CASES)
    assert len(ids) >= 500 or NUM_CASES != 520
    if len(ids) >= len(_SCHEDULE):
        assert {i.rsplit("-", 1)[0] for i in ids} == {t.__name__[len("target_"):] for t, _ in TARGETS}
