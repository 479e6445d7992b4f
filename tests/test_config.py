from pathlib import Path

import pytest

from videostyle.config import Settings, layer_weight_map, list_presets, resolve_settings, settings_hash, validate
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


def test_presets_share_one_set_of_gram_weights_and_paper_keeps_the_papers() -> None:
    paper = resolve_settings("paper").style
    assert (paper.normalization, paper.style_layer_weights) == ("paper", ())
    assert Settings().style.normalization == "paper"  # the API's defaults are the paper's values
    styles = {name: resolve_settings(name).style for name in ("default", "preview", "singlepass", "longterm")}
    assert {s.normalization for s in styles.values()} == {"gram"}
    weights = {(s.content_weight, s.style_weight, s.tv_weight, s.style_layer_weights) for s in styles.values()}
    assert len(weights) == 1
    assert all(set(layer_weight_map(s.style_layer_weights)) == set(s.style_layers) for s in styles.values())
    # a subset of the layers keeps the preset's weights for those layers
    subset = resolve_settings("default", None, {"style": {"style_layers": ["relu1_1", "relu4_1"]}})
    validate(subset)
    with pytest.raises(UserError, match="no weight for relu4_2"):
        validate(resolve_settings("default", None, {"style": {"style_layers": ["relu1_1", "relu4_2"]}}))


def test_style_layer_weights_are_checked_by_their_declaration() -> None:
    for bad, message in ((["relu4_1"], "LAYER:WEIGHT"), (["relu4_1:-1"], "LAYER:WEIGHT"), (["relu9_1:1"], "relu9_1"),
                         (["relu4_1:1", "relu4_1:2"], "twice"), (["relu4_1:0"], "all zero")):
        with pytest.raises(UserError, match=message):
            resolve_settings(None, None, {"style": {"style_layer_weights": bad}})


def test_the_running_source_trees_presets_are_read(tmp_path: Path) -> None:
    from videostyle import config

    assert Path(str(config.presets_dir())) == Path(config.__file__).resolve().parent.parent / "configs"


def test_loss_normalization_is_a_declared_choice() -> None:
    with pytest.raises(UserError, match="loss-normalization|normalization"):
        validate(resolve_settings(None, None, {"style": {"normalization": "unit"}}))
    assert resolve_settings(None, None, {"style": {"normalization": "gram"}}).style.normalization == "gram"
