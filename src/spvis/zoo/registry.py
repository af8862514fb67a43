"""The model zoo: one table of the models ``spvis.load(NAME)`` and ``spvis infer --model NAME`` know.

Every entry says what the model predicts (task, dataset, classes), how (backbone, mode), how well its
authors say it does (reported AP and on what), where its file comes from, under which licence, and how
the importer converts it. Facts come from the official model zoos (zhang-tao-whu/DVIS 6695214 MODEL_ZOO.md,
zhang-tao-whu/DVIS_Plus c0eb249 DVIS_Plus/MODEL_ZOO.md, facebookresearch/Mask2Former 9b0651c MODEL_ZOO.md)
and, for Hub file names and checksums, the Hub's own file pages.

More entries (a mirror, your own models) come from a JSON list named by ``$SPVIS_MODEL_REGISTRY``: one object
per entry with the fields of ``ZooEntry``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from spvis.data.categories import COCO_NAMES, OVIS_NAMES, YTVIS_2019_NAMES, YTVIS_2021_NAMES
from spvis.errors import SpvisError

KINDS = ("builtin", "url", "hub", "manual")  # how the weights file is obtained
REGISTRY_ENV = "SPVIS_MODEL_REGISTRY"


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo. ``kind``: builtin (shipped in the package), url (plain HTTPS download of ``url``),
    hub (``filename`` of the Hugging Face repo ``repo_id``), manual (the authors host it where no script can
    download it: the user downloads ``url`` and puts the file where spvis says)."""

    name: str
    task: str
    dataset: str
    backbone: str
    mode: str
    reported_ap: float | None
    benchmark: str  # what reported_ap was measured on
    source: str  # where the weights come from, for people
    licence: str
    size: str  # download size as published ("" when not stated)
    kind: str
    url: str = ""
    repo_id: str = ""
    filename: str = ""  # hub: path inside the repo; url/manual: the file's name once downloaded
    revision: str = "main"
    endpoint: str = ""  # hub endpoint (default: huggingface_hub's, i.e. $HF_ENDPOINT or huggingface.co)
    sha256: str = ""  # published checksum; empty: the first download's is recorded and checked afterwards
    fmt: str = ""  # importer format: mask2former | dvis | dvis++
    arch: dict = field(default_factory=dict)  # official_tree(**arch) builds the official config
    official_config: str = ""  # or: URL / path of the official (fully dumped) yaml
    class_names: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()  # config overrides saved with the converted model (e.g. TEST.TRACKER=minvis)
    trained_on: str = ""
    unsupported: str = ""  # non-empty: listed for reference, cannot be loaded yet (the reason)

    @property
    def loadable(self) -> bool:
        return not self.unsupported

    def to_dict(self) -> dict[str, Any]:
        """json-ready fields (``spvis models --json``)."""
        data = asdict(self)
        data["class_names"] = list(self.class_names)
        data["overrides"] = list(self.overrides)
        data["loadable"] = self.loadable
        return data


# --- the official entries ------------------------------------------------------------------------------------

_DVIS_PAGE = ("https://pan.baidu.com/s/1kfSbdHTD8ve47gn-n_7xDQ?pwd=dvis or "
              "https://pjxnzg3129.feishu.cn/drive/folder/VW6XfCduZlujiFdgHeCcFss4ndh")
_DVIS_LICENCE = "MIT (the DVIS repository's licence; its model zoo states no separate terms for the weights)"
_M2F_LICENCE = "CC BY-NC 4.0 (Mask2Former model zoo: non-commercial)"
_DVISPP_LICENCE = "MIT (zhangtao-whu/DVIS_Plus on the Hugging Face Hub)"
_M2F_URL = "https://dl.fbaipublicfiles.com/maskformer/mask2former/coco/instance/{}/{}"

_DATASETS = {  # key: (dataset, benchmark of the reported AP, classes, official training data, test size R50/SwinL)
    "ytvis19": ("YouTube-VIS 2019", "YouTube-VIS 2019 val (server)", YTVIS_2019_NAMES,
                "COCO pseudo-videos + YouTube-VIS 2019 train"),
    "ytvis21": ("YouTube-VIS 2021", "YouTube-VIS 2021 val (server)", YTVIS_2021_NAMES,
                "COCO pseudo-videos + YouTube-VIS 2021 train"),
    "ovis": ("OVIS", "OVIS val (server)", OVIS_NAMES, "OVIS train"),
}
# DVIS MODEL_ZOO.md, AP of the 360p (R50) and 480p (Swin-L) rows
_DVIS_AP = {("ytvis19", "online", "R50"): 51.0, ("ytvis19", "online", "SwinL"): 63.7,
            ("ytvis19", "offline", "R50"): 52.1, ("ytvis19", "offline", "SwinL"): 64.8,
            ("ytvis21", "online", "R50"): 46.3, ("ytvis21", "online", "SwinL"): 58.6,
            ("ytvis21", "offline", "R50"): 47.3, ("ytvis21", "offline", "SwinL"): 60.0,
            ("ovis", "online", "R50"): 30.4, ("ovis", "online", "SwinL"): 46.0,
            ("ovis", "offline", "R50"): 33.7, ("ovis", "offline", "SwinL"): 48.8}
# DVIS_Plus/MODEL_ZOO.md, R50 rows (480p); the Hub file names that are known from the Hub's file pages
_DVISPP_AP = {("ytvis19", "online"): 55.5, ("ytvis19", "offline"): 56.7, ("ytvis21", "online"): 50.0,
              ("ytvis21", "offline"): 52.0, ("ovis", "online"): 37.2, ("ovis", "offline"): 41.2}
_DVISPP_FILES = {("ovis", "offline"): ("DVIS++/weights/offline_r50_ovis_412.pth", "464 MB",
                                       "ed812bffdc52e4830b0058a0ddacca06c81239e9a1b464c66c23c04003326af8")}


def _dvis(dataset: str, mode: str, backbone: str) -> ZooEntry:
    name, benchmark, names, trained_on = _DATASETS[dataset]
    meta = "DVIS_online" if mode == "online" else "DVIS_offline"
    return ZooEntry(
        name=f"dvis-{mode}-{backbone.lower()}-{dataset}", task="VIS", dataset=name,
        backbone="ResNet-50" if backbone == "R50" else "Swin-L (IN21k)", mode=mode,
        reported_ap=_DVIS_AP[(dataset, mode, backbone)], benchmark=benchmark,
        source=f"DVIS model zoo: {_DVIS_PAGE}", licence=_DVIS_LICENCE, size="", kind="manual", url=_DVIS_PAGE,
        filename=f"dvis_{mode}_{backbone.lower()}_{dataset}.pth", fmt="dvis",
        arch={"backbone": backbone, "meta": meta, "num_classes": len(names),
              "queries": 100 if backbone == "R50" else 200, "min_size_test": 360 if backbone == "R50" else 480},
        class_names=tuple(names), trained_on=trained_on)


def _dvispp(dataset: str, mode: str) -> ZooEntry:
    name, benchmark, names, trained_on = _DATASETS[dataset]
    filename, size, sha = _DVISPP_FILES.get((dataset, mode), ("", "", ""))
    return ZooEntry(
        name=f"dvispp-{mode}-r50-{dataset}", task="VIS", dataset=name, backbone="ResNet-50", mode=mode,
        reported_ap=_DVISPP_AP[(dataset, mode)], benchmark=benchmark,
        source="https://huggingface.co/zhangtao-whu/DVIS_Plus/tree/main/DVIS%2B%2B" + (f" ({filename})" if filename
                                                                                      else ""),
        licence=_DVISPP_LICENCE, size=size, kind="hub", repo_id="zhangtao-whu/DVIS_Plus", filename=filename,
        sha256=sha, fmt="dvis++", class_names=tuple(names), trained_on=trained_on,
        unsupported="the importer does not read DVIS++'s DVIS_Plus_online/offline meta-architectures yet")


def _mask2former(backbone: str) -> ZooEntry:
    folder, file, ap, size = {
        "R50": ("maskformer2_R50_bs16_50ep", "model_final_3c8ec9.pkl", 43.7, ""),
        "SwinL": ("maskformer2_swin_large_IN21k_384_bs16_100ep", "model_final_e5f453.pkl", 50.1, ""),
    }[backbone]
    return ZooEntry(
        name=f"mask2former-coco-{backbone.lower()}", task="VIS (image segmenter + MinVIS association)",
        dataset="COCO 2017 (80 classes)", backbone="ResNet-50" if backbone == "R50" else "Swin-L (IN21k)",
        mode="online (MinVIS association)", reported_ap=ap, benchmark="COCO val2017 instance mask AP (images)",
        source=_M2F_URL.format(folder, file), licence=_M2F_LICENCE, size=size, kind="url",
        url=_M2F_URL.format(folder, file), filename=file, fmt="mask2former",
        arch={"backbone": backbone, "meta": "MaskFormer", "num_classes": 80,
              "queries": 100 if backbone == "R50" else 200, "min_size_test": 800},
        class_names=tuple(COCO_NAMES), overrides=("TEST.TRACKER=minvis",), trained_on="COCO 2017 train (images)")


def _builtin() -> ZooEntry:
    from spvis.data.synth_shapes import CATEGORY_SPECS

    return ZooEntry(
        name="demo", task="VIS", dataset="SPVIS procedural shapes (`spvis synth`), 6 classes", backbone="tiny CNN",
        mode="online + offline", reported_ap=70.4,
        benchmark="12 procedural report sets of `spvis synth` (offline; online 69.7); not real footage",
        source="built in (spvis/assets/demo_model.safetensors)", licence="MIT", size="7.9 MB", kind="builtin",
        class_names=tuple(spec.name for spec in CATEGORY_SPECS[:6]),
        trained_on="procedural videos of coloured shapes generated on the fly by `spvis synth` (seed 0); nothing real")


def builtin_entries() -> list[ZooEntry]:
    """The shipped table: the demo model, DVIS (R50, Swin-L), DVIS++ (R50), COCO Mask2Former segmenters."""
    entries = [_builtin()]
    for dataset in ("ytvis19", "ytvis21", "ovis"):
        for mode in ("online", "offline"):
            entries += [_dvis(dataset, mode, "R50"), _dvis(dataset, mode, "SwinL")]
    entries += [_dvispp(dataset, mode) for dataset in ("ytvis19", "ytvis21", "ovis") for mode in ("online", "offline")]
    entries += [_mask2former("R50"), _mask2former("SwinL")]
    return entries


# --- user entries -----------------------------------------------------------------------------------------------

def entries_from_file(path: str | Path) -> list[ZooEntry]:
    """Entries of a registry JSON file (a list of objects with ZooEntry's fields); one-line errors."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpvisError(f"{path}: model registry file not found (${REGISTRY_ENV})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpvisError(f"{path}: not a readable JSON model registry ({exc})") from None
    if not isinstance(data, list):
        raise SpvisError(f"{path}: a model registry is a JSON list of entries")
    known = {f.name: f for f in fields(ZooEntry)}
    entries = []
    for index, item in enumerate(data):
        where = f"{path}: entry {index}"
        if not isinstance(item, dict):
            raise SpvisError(f"{where}: must be an object")
        unknown = sorted(set(item) - set(known) - {"loadable"})
        if unknown:
            raise SpvisError(f"{where}: unknown field '{unknown[0]}' (fields: {', '.join(known)})")
        values = {key: value for key, value in item.items() if key != "loadable"}
        for key in ("class_names", "overrides"):
            if key in values:
                values[key] = tuple(values[key])
        try:
            entry = ZooEntry(**values)
        except TypeError as exc:
            missing = str(exc).split("argument")[-1].strip(": ")
            raise SpvisError(f"{where}: missing field(s) {missing}") from None
        _check_entry(entry, where)
        entries.append(entry)
    return entries


def _check_entry(entry: ZooEntry, where: str) -> None:
    if entry.kind not in KINDS:
        raise SpvisError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}, got {entry.kind!r}")
    if entry.kind == "url" and not entry.url.startswith(("http://", "https://")):
        raise SpvisError(f"{where}: field 'url' must be an http(s) URL for kind url, got {entry.url!r}")
    if entry.kind == "hub" and not (entry.repo_id and entry.filename):
        raise SpvisError(f"{where}: kind hub needs the fields 'repo_id' and 'filename'")
    if entry.kind != "builtin" and entry.loadable and not (entry.arch or entry.official_config):
        raise SpvisError(f"{where}: field 'arch' or 'official_config' is needed to convert the weights")
    if entry.sha256 and (len(entry.sha256) != 64 or any(c not in "0123456789abcdef" for c in entry.sha256)):
        raise SpvisError(f"{where}: field 'sha256' must be 64 lowercase hex digits, got {entry.sha256!r}")


def list_entries() -> list[ZooEntry]:
    """Every entry: the shipped table, then those of $SPVIS_MODEL_REGISTRY (which may replace a shipped name)."""
    entries = {entry.name: entry for entry in builtin_entries()}
    extra = os.environ.get(REGISTRY_ENV)
    if extra:
        entries.update({entry.name: entry for entry in entries_from_file(extra)})
    return list(entries.values())


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name``; SpvisError listing the names otherwise."""
    for entry in list_entries():
        if entry.name == name:
            return entry
    names = ", ".join(entry.name for entry in list_entries())
    raise SpvisError(f"model {name!r} is not in the zoo (`spvis models` lists them: {names})")
