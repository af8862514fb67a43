"""The config tree rejects unknown keys and wrong types with a message naming the key."""

from __future__ import annotations

import pytest

from spvis.config import get_cfg, load_config
from spvis.errors import ConfigError


def test_defaults_and_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("MODEL:\n  NUM_CLASSES: 7\nSOLVER:\n  BASE_LR: 1\n")
    cfg = load_config(path, ["SOLVER.MAX_ITER=12", "INPUT.MIN_SIZE_TRAIN=[64, 96]"])
    assert cfg.MODEL.NUM_CLASSES == 7
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.SOLVER.MAX_ITER == 12
    assert cfg.INPUT.MIN_SIZE_TRAIN == [64, 96]
    assert get_cfg().MODEL.NUM_CLASSES == 40  # defaults untouched


def test_base_chain(tmp_path):
    (tmp_path / "base.yaml").write_text("MODEL:\n  NUM_CLASSES: 3\n  DECODER:\n    NUM_QUERIES: 5\n")
    (tmp_path / "child.yaml").write_text("_BASE_: base.yaml\nMODEL:\n  NUM_CLASSES: 4\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert cfg.MODEL.NUM_CLASSES == 4 and cfg.MODEL.DECODER.NUM_QUERIES == 5


@pytest.mark.parametrize(
    "override, needle",
    [
        ("SOLVER.MAX_ITR=3", "unknown config key SOLVER.MAX_ITR (did you mean MAX_ITER?)"),
        ("SOLVER.MAX_ITER=abc", "config key SOLVER.MAX_ITER expects an integer, got 'abc'"),
        ("SOLVER.MAX_ITER=true", "config key SOLVER.MAX_ITER expects an integer"),
        ("TEST.MODE=sideways", "config key TEST.MODE must be one of ['online', 'offline']"),
        ("MODEL=3", "config key MODEL is a section"),
        ("NOEQUALS", "must look like KEY.SUB=VALUE"),
    ],
)
def test_bad_overrides(override, needle):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert needle in str(info.value)


def test_unknown_key_in_file_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("MODEL:\n  TRACKR: {}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key MODEL.TRACKR"):
        load_config(path)


def test_dump_round_trip(tmp_path):
    cfg = load_config(None, ["MODEL.NUM_CLASSES=9"])
    path = tmp_path / "dump.yaml"
    path.write_text(cfg.dump())
    assert load_config(path) == cfg


def test_attribute_assignment_rejects_typos():
    cfg = get_cfg()
    with pytest.raises(ConfigError):
        cfg.SOLVER.MAX_ITR = 3


def test_builtin_recipes_resolve_from_any_directory(tmp_path, monkeypatch):
    from spvis.config import load_config

    monkeypatch.chdir(tmp_path)
    cfg = load_config("synth/segmenter.yaml")
    assert cfg.STAGE == "segmenter" and cfg.MODEL.BACKBONE.NAME == "tiny"
    assert load_config("configs/ovis/dvis_online_R50.yaml").MODEL.NUM_CLASSES == 25


def test_packaged_config_names_work_as_base(tmp_path):
    """A user's yaml can start from a shipped recipe by name, from any folder."""
    from spvis.config import load_config

    mine = tmp_path / "mine.yaml"
    mine.write_text("_BASE_: synth/segmenter.yaml\nSOLVER: {MAX_ITER: 7}\n")
    cfg = load_config(mine)
    assert cfg.STAGE == "segmenter" and cfg.SOLVER.MAX_ITER == 7 and cfg.MODEL.NUM_CLASSES == 6
    (tmp_path / "prefixed.yaml").write_text("_BASE_: configs/synth/tracker.yaml\n")
    assert load_config(tmp_path / "prefixed.yaml").STAGE == "tracker"
    (tmp_path / "missing.yaml").write_text("_BASE_: synth/nope.yaml\n")
    with pytest.raises(ConfigError, match=r"synth/nope\.yaml: config file not found"):
        load_config(tmp_path / "missing.yaml")
