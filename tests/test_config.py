from pathlib import Path

import pytest

from videostyle.config import Settings, list_presets, resolve_settings, settings_hash, validate
from videostyle.errors import UserError


def test_presets_load_and_validate() -> None:
    assert {"default", "paper", "singlepass", "preview"} <= set(list_presets())
    for name in list_presets():
        validate(resolve_settings(name))
    assert resolve_settings("singlepass").video.algorithm == "singlepass"
    paper = resolve_settings("paper")
    assert (paper.video.passes, paper.video.iterations, paper.video.temporal_from) == (15, 100, 8)
    assert (paper.flow.method, paper.video.first_pass, paper.video.coarse_passes) == ("deepflow", "independent", 0)
    assert (paper.video.temporal_weight, paper.style.style_weight, paper.style.content_weight) == (500, 100, 5)
    assert resolve_settings("default").video.first_pass == "propagate"


def test_overrides_beat_config_file_beat_preset(tmp_path: Path) -> None:
    cfg = tmp_path / "my.toml"
    cfg.write_text("[video]\npasses = 3\niterations = 7\n[style]\nstyle_layers = ['relu1_1']\n")
    s = resolve_settings("default", cfg, {"video": {"passes": 2, "seed": None}})
    assert (s.video.passes, s.video.iterations, s.style.style_layers) == (2, 7, ("relu1_1",))


def test_unknown_keys_and_bad_values_are_user_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[video]\npasess = 3\n")
    with pytest.raises(UserError, match="did you mean 'passes'"):
        resolve_settings(None, cfg)
    with pytest.raises(UserError, match="unknown preset"):
        resolve_settings("nope")
    for bad in ({"passes": 0}, {"iterations": -1}, {"algorithm": "x"}):
        with pytest.raises(UserError):
            validate(resolve_settings(None, None, {"video": bad}))
    (tmp_path / "broken.toml").write_text("[video\n")
    with pytest.raises(UserError, match="not valid TOML"):
        resolve_settings(None, tmp_path / "broken.toml")


def test_hash_changes_with_settings() -> None:
    a, b = Settings(), resolve_settings(None, None, {"style": {"style_weight": 1.0}})
    assert settings_hash(a) == settings_hash(Settings())
    assert settings_hash(a) != settings_hash(b)
