import pytest

from genzoo import config as C
from genzoo.errors import GenzooError
from genzoo.models.vae import VAEConfig
from genzoo.training import TrainConfig
from genzoo.training.launch import resolve


def test_values_parse_as_yaml_and_coerce_to_field_types():
    assert C.parse_value("3") == 3
    assert C.parse_value("1e-3") == 1e-3
    assert C.parse_value("[32, 64]") == [32, 64]
    assert C.parse_value("true") is True
    cfg = C.from_dict(VAEConfig, {"beta": 2, "widths": [8, 16]})
    assert cfg.beta == 2.0 and isinstance(cfg.beta, float)
    assert cfg.widths == (8, 16)


def test_unknown_setting_names_the_valid_ones():
    with pytest.raises(GenzooError, match="unknown setting 'betaa'.*beta"):
        C.from_dict(VAEConfig, {"betaa": 1})


def test_wrong_type_and_invalid_value_are_clear_errors():
    with pytest.raises(GenzooError, match="latent_dim must be int, got 'two'"):
        C.from_dict(VAEConfig, {"latent_dim": "two"})
    with pytest.raises(GenzooError, match="reconstruction must be bce, mse or cb"):
        C.from_dict(VAEConfig, {"reconstruction": "l1"})
    with pytest.raises(GenzooError, match="precision must be fp32, bf16 or auto"):
        C.from_dict(TrainConfig, {"precision": "fp16"})


def test_resolve_merges_preset_file_flags_and_overrides_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model: {latent_dim: 4, beta: 10}\ntrain: {steps: 7, batch_size: 5}\n")
    d = resolve("vae", data="digits", config_file=str(f), preset="strong",
                overrides=["beta=3", "train.lr_schedule=cosine", "data.holdout=0.2"],
                train={"batch_size": 9}).to_dict()
    assert d["model"]["latent_dim"] == 4          # file beats preset
    assert d["model"]["beta"] == 3.0              # --set beats file
    assert d["train"]["steps"] == 7 and d["train"]["batch_size"] == 9   # flag beats file
    assert d["train"]["lr_schedule"] == "cosine"
    assert d["data"] == {**d["data"], "spec": "digits", "holdout": 0.2, "image_size": 32}


def test_bad_config_file_and_override_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(GenzooError, match="bad.yaml: not valid YAML"):
        resolve("vae", data="digits", config_file=str(bad))
    with pytest.raises(GenzooError, match="no such config file"):
        resolve("vae", data="digits", config_file=str(tmp_path / "none.yaml"))
    with pytest.raises(GenzooError, match="expected key=value"):
        resolve("vae", data="digits", overrides=["beta"])
    with pytest.raises(GenzooError, match="unknown section 'trian'"):
        resolve("vae", data="digits", overrides=["trian.steps=3"])
    with pytest.raises(GenzooError, match="unknown preset 'huge'"):
        resolve("vae", data="digits", preset="huge")
    with pytest.raises(GenzooError, match="unknown family 'vea'"):
        resolve("vea", data="digits")


def test_text_settings_keep_what_was_typed():
    d = resolve("vae", data="digits", overrides=["data.template={text}", "train.device=cpu",
                                                 "data.max_items=null"]).to_dict()
    assert d["data"]["template"] == "{text}"
    assert d["train"]["device"] == "cpu" and d["data"]["max_items"] is None
