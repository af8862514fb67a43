"""Is this input what the model was trained on? A one-line warning when a synthetic-shapes model meets real video.

The built-in demo model (and anything trained on ``spvis synth`` data) knows six coloured shapes and nothing
else; on real footage it still labels people ``red_disc`` with high scores. The test is cheap and documented:

* the model is a synthetic-shapes model when its class names are all ``spvis synth`` category names;
* the input is ``spvis synth`` data when it is a dataset json whose ``info.description`` is the benchmark's
  (looked for in the file's first 4 KB, where ``spvis synth`` writes it), or a video / frame folder inside such
  a dataset (such a json in its folder or up to three folders above).

Anything else (a phone video, a DAVIS frame folder, an iterable of arrays) gets the warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HEAD_BYTES = 4096  # the json prefix read: `spvis synth` writes "info" first
PARENTS = 3  # folders above a video / frame folder searched for its dataset json
MAX_JSONS = 20  # json files looked at per folder


def is_synthetic_model(cfg: Any) -> bool:
    """Whether every class name of the model is a ``spvis synth`` category (the demo model's six shapes)."""
    from spvis.data.synth_shapes import CATEGORY_SPECS
    from spvis.engine.inference import class_names_for

    names = class_names_for(cfg)
    return bool(names) and set(names) <= {spec.name for spec in CATEGORY_SPECS}


def _is_synth_json(path: Path) -> bool:
    from spvis.data.synth import SYNTH_DESCRIPTION

    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return False
    return f'"description": "{SYNTH_DESCRIPTION}"'.encode() in head


def is_synthetic_input(src: Any) -> bool:
    """Whether ``src`` (a path; anything else counts as not synthetic) is ``spvis synth`` data."""
    from spvis.data.live import is_live

    if not isinstance(src, (str, Path)) or is_live(str(src)):
        return False
    path = Path(src)
    if path.suffix.lower() == ".json":
        return _is_synth_json(path)
    folder = path.resolve().parent if path.is_file() else path.resolve()
    for _ in range(PARENTS + 1):
        if folder.is_dir() and any(_is_synth_json(p) for p in sorted(folder.glob("*.json"))[:MAX_JSONS]):
            return True
        if folder.parent == folder:
            break
        folder = folder.parent
    return False


def domain_warning(cfg: Any, src: Any) -> str | None:
    """The warning line for a synthetic-shapes model on input that is not ``spvis synth`` data, else None."""
    if not is_synthetic_model(cfg) or is_synthetic_input(src):
        return None
    what = src if isinstance(src, (str, Path)) else "this input"
    return (f"this model knows only the six procedural shapes of `spvis synth` (red_disc ... cyan_cross) and "
            f"{what} is not `spvis synth` data, so its labels will be wrong; `spvis models` lists models "
            f"trained on real video")
