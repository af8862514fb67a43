"""The model zoo without the internet: a server on 127.0.0.1 serves the tiny official DVIS bundle in the real
checkpoint layout (an official ``.pth`` + its dumped detectron2 yaml), and registry entries pointed at it go
through download, checksum, import, cache, ``spvis.load`` and ``spvis infer --model``; plus the failures
(wrong checksum, truncated transfer, server down, offline, a replaced file, a damaged cache)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from _local_server import LocalServer, serve
from spvis.cli.main import main
from spvis.data.categories import YTVIS_2019_NAMES
from spvis.errors import SpvisError

BUNDLE = Path(__file__).parent / "data" / "dvis_official_tiny"
CKPT_PATH, CONFIG_PATH = "/zoo/dvis_tiny/checkpoint.pth", "/zoo/dvis_tiny/config.yaml"


@pytest.fixture(scope="module")
def bundle_bytes() -> tuple[bytes, bytes]:
    return (BUNDLE / "checkpoint.pth").read_bytes(), (BUNDLE / "config.yaml").read_bytes()


@pytest.fixture
def server(bundle_bytes):
    for running in serve():
        running.files[CKPT_PATH], running.files[CONFIG_PATH] = bundle_bytes
        yield running


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """$SPVIS_HOME in tmp_path and a registry file; ``zoo(**entry)`` writes entries into it."""
    home, registry = tmp_path / "home", tmp_path / "registry.json"
    monkeypatch.setenv("SPVIS_HOME", str(home))
    monkeypatch.setenv("SPVIS_MODEL_REGISTRY", str(registry))
    monkeypatch.delenv("SPVIS_OFFLINE", raising=False)

    def write(*entries: dict) -> Path:
        registry.write_text(json.dumps(list(entries)))
        return home

    return write


def tiny_entry(server: LocalServer, **changes) -> dict:
    entry = {"name": "tiny-dvis", "task": "VIS", "dataset": "YouTube-VIS 2019 (test bundle)", "backbone": "ResNet-18",
             "mode": "offline", "reported_ap": None, "benchmark": "none", "source": server.url + CKPT_PATH,
             "licence": "test", "size": "28 MB", "kind": "url", "url": server.url + CKPT_PATH,
             "filename": "dvis_tiny.pth", "fmt": "dvis", "official_config": server.url + CONFIG_PATH,
             "class_names": YTVIS_2019_NAMES}
    entry.update(changes)
    return entry


def frame_folder(tmp_path: Path) -> Path:
    """The bundle's 6 DAVIS frames as a PNG folder (real footage)."""
    from PIL import Image

    folder = tmp_path / "car-shadow"
    folder.mkdir()
    for index, frame in enumerate(np.load(BUNDLE / "inputs.npz")["frames"]):
        Image.fromarray(frame).save(folder / f"{index:05d}.png")
    return folder


def leftovers(home: Path) -> list[str]:
    """Files under $SPVIS_HOME other than the checksum record (a failed fetch must leave nothing usable)."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and p.name != "checksums.json")


def test_download_checksum_import_cache_load_and_infer(server, zoo, tmp_path, capsys):
    import spvis
    from spvis.checkpoints.verify import run_bundle

    home = zoo(tiny_entry(server))
    segmenter = spvis.load("tiny-dvis", device="cpu")
    folder = home / "models" / "tiny-dvis"
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", "SOURCE.json", "config.yaml",
                                                         "model.safetensors", "official_config.yaml"]
    official_sha = hashlib.sha256((BUNDLE / "checkpoint.pth").read_bytes()).hexdigest()
    assert json.loads((home / "checksums.json").read_text()) == {server.url + CKPT_PATH: official_sha}
    assert json.loads((folder / "SOURCE.json").read_text())["official_sha256"] == official_sha
    assert not (home / "downloads").exists() or not any((home / "downloads").iterdir())  # converted, then removed
    assert segmenter.names == YTVIS_2019_NAMES and "| 0 | person |" in (folder / "MODEL_CARD.md").read_text()
    rows, _ = run_bundle(BUNDLE, weights=folder)  # the cached conversion reproduces the official outputs
    assert rows and all(row.passed for row in rows)

    server.stop()  # cached: no network needed any more, through the CLI too
    requests = len(server.requests)
    out = tmp_path / "out"
    code = main(["infer", "--model", "tiny-dvis", "--input", str(frame_folder(tmp_path)), "--out", str(out),
                 "--device", "cpu", "--no-overlay"])
    assert code == 0 and len(server.requests) == requests
    entries = json.loads((out / "results.json").read_text())
    assert entries and all(len(e["segmentations"]) == 6 for e in entries)
    assert "warning" not in capsys.readouterr().err  # a real-data model on real data: no domain warning


def test_hub_files_come_through_huggingface_hub_with_its_checksum(server, zoo, bundle_bytes):
    pytest.importorskip("huggingface_hub")
    import spvis

    hub_path = "/test-org/tiny/resolve/main/weights/dvis_tiny.pth"
    server.files[hub_path] = bundle_bytes[0]
    home = zoo(tiny_entry(server, name="tiny-hub", kind="hub", url="", repo_id="test-org/tiny",
                          filename="weights/dvis_tiny.pth", endpoint=server.url))
    spvis.load("tiny-hub", device="cpu")
    assert (home / "models" / "tiny-hub" / "SOURCE.json").is_file()
    assert any(r.startswith("GET /test-org/tiny/resolve/main/") for r in server.requests)

    server.hub_etag[hub_path] = "ab" * 32  # the Hub announces another file than the bytes that arrive
    zoo(tiny_entry(server, name="tiny-hub2", kind="hub", url="", repo_id="test-org/tiny",
                   filename="weights/dvis_tiny.pth", endpoint=server.url, revision="main"))
    import shutil

    shutil.rmtree(home / "hub")
    with pytest.raises(SpvisError, match="does not match the Hub's checksum"):
        spvis.load("tiny-hub2", device="cpu")
    assert not (home / "models" / "tiny-hub2").exists()


def test_wrong_published_checksum_is_refused_and_nothing_kept(server, zoo):
    import spvis

    home = zoo(tiny_entry(server, sha256="0" * 64))
    with pytest.raises(SpvisError, match=r"dvis_tiny\.pth: sha256 [0-9a-f]{64} does not match the sha256 published"):
        spvis.load("tiny-dvis", device="cpu")
    assert leftovers(home) == []


def test_truncated_transfer_is_never_used(server, zoo):
    import spvis

    server.truncate[CKPT_PATH] = 1000
    home = zoo(tiny_entry(server))
    with pytest.raises(SpvisError, match=r"(transfer ended after 1000 of|download failed after).*nothing was kept"):
        spvis.load("tiny-dvis", device="cpu")
    assert leftovers(home) == []


def test_server_down_says_what_to_download_and_where(server, zoo, capsys):
    home = zoo(tiny_entry(server))
    server.stop()
    code = main(["infer", "--model", "tiny-dvis", "--input", str(BUNDLE / "inputs.npz"), "--out", "unused"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("spvis infer: error: ")
    assert "cannot reach the server" in err and f"put it at {home / 'downloads' / 'dvis_tiny.pth'}" in err
    assert leftovers(home) == []


def test_offline_mode_never_touches_the_network(server, zoo, monkeypatch, capsys):
    home = zoo(tiny_entry(server))
    monkeypatch.setenv("SPVIS_OFFLINE", "1")
    assert main(["models", "--json"]) == 0
    capsys.readouterr()
    assert main(["infer", "--model", "tiny-dvis", "--input", str(BUNDLE), "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SPVIS_OFFLINE=1" in err and server.url + CKPT_PATH in err
    assert str(home / "downloads" / "dvis_tiny.pth") in err and server.requests == []

    # the file put where the message says is used, offline (and its sha256 recorded on the way)
    target = home / "downloads" / "dvis_tiny.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes((BUNDLE / "checkpoint.pth").read_bytes())
    zoo(tiny_entry(server, official_config=str(BUNDLE / "config.yaml")))
    import spvis

    spvis.load("tiny-dvis", device="cpu")
    assert server.requests == [] and target.is_file()  # a file the user placed is never deleted


def test_a_replaced_file_fails_the_checksum_recorded_at_first_download(server, zoo, bundle_bytes):
    import shutil

    import spvis

    home = zoo(tiny_entry(server))
    spvis.load("tiny-dvis", device="cpu")
    shutil.rmtree(home / "models" / "tiny-dvis")
    server.files[CKPT_PATH] = bundle_bytes[0][:-16] + b"\0" * 16  # same length, other bytes
    with pytest.raises(SpvisError, match="sha256 recorded at its first download"):
        spvis.load("tiny-dvis", device="cpu")
    assert not (home / "models" / "tiny-dvis").exists() and not (home / "downloads" / "dvis_tiny.pth").exists()


def test_a_damaged_cached_model_is_refused(server, zoo):
    import spvis

    home = zoo(tiny_entry(server))
    spvis.load("tiny-dvis", device="cpu")
    weights = home / "models" / "tiny-dvis" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(SpvisError, match="cached model is damaged, delete"):
        spvis.load("tiny-dvis", device="cpu")


def test_manual_entries_say_where_to_put_the_file(zoo, monkeypatch, capsys):
    zoo()
    assert main(["infer", "--model", "dvis-online-r50-ytvis19", "--input", str(BUNDLE), "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert "pan.baidu.com" in err and "downloads/dvis_online_r50_ytvis19.pth" in err and len(err.splitlines()) == 1


def test_models_lists_the_registry_as_json(zoo, capsys):
    zoo()
    assert main(["models", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    demo = entries["demo"]
    assert demo["class_names"] == ["red_disc", "green_square", "blue_triangle", "yellow_star", "magenta_ring",
                                   "cyan_cross"] and demo["status"] == "built in"
    for dataset in ("ytvis19", "ytvis21", "ovis"):
        for mode in ("online", "offline"):
            for backbone in ("r50", "swinl"):
                assert f"dvis-{mode}-{backbone}-{dataset}" in entries
            assert f"dvispp-{mode}-r50-{dataset}" in entries
    m2f = entries["mask2former-coco-r50"]
    assert m2f["url"].startswith("https://dl.fbaipublicfiles.com/") and m2f["overrides"] == ["TEST.TRACKER=minvis"]
    for entry in entries.values():
        assert {"name", "task", "dataset", "backbone", "mode", "reported_ap", "source", "licence", "size"} <= set(entry)
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("mask2former-coco-swinl "))
    assert "dl.fbaipublicfiles.com" in row and "CC BY-NC 4.0" in row and "download on first use" in row
    assert "pan.baidu.com (by hand)" in next(line for line in table.splitlines() if line.startswith("dvis-online-r50"))
    assert main(["models", "demo"]) == 0
    card = capsys.readouterr().out
    assert "| 5 | cyan_cross |" in card and "spvis synth" in card


def test_every_loadable_entry_translates_through_the_importer_config():
    from spvis.checkpoints.official_config import official_to_cfg
    from spvis.zoo.official_arch import official_tree
    from spvis.zoo.registry import builtin_entries

    import yaml

    for entry in builtin_entries():
        if entry.kind == "builtin" or not entry.loadable:
            continue
        path = Path(__import__("tempfile").mkdtemp()) / "official.yaml"
        path.write_text(yaml.safe_dump(official_tree(**entry.arch)))
        cfg = official_to_cfg(path, fmt=entry.fmt)
        assert cfg.MODEL.NUM_CLASSES == len(entry.class_names)
        assert cfg.MODEL.BACKBONE.NAME == ("resnet" if "ResNet" in entry.backbone else "swin")
        assert cfg.MODEL.TRACKER.ENABLED == entry.name.startswith("dvis-")
        assert cfg.MODEL.REFINER.ENABLED == ("offline" in entry.name)
        assert cfg.MODEL.DECODER.NUM_QUERIES == (100 if "ResNet" in entry.backbone else 200)
