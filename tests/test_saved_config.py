"""A shared config.yml is read without running anything it names (ernerf-render's loader)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ernerf_ns.config import ernerf_method, ernerf_tiny_method
from ernerf_ns.models.torso_config import TorsoConfig
from ernerf_ns.saved_config import UntrustedConfigError, load_config


@pytest.fixture
def saved_config(tmp_path):
    """An `ernerf` config.yml as ns-train writes it (nerfstudio's yaml dump of the TrainerConfig)."""
    config = copy.deepcopy(ernerf_method.config)
    config.output_dir = tmp_path / "outputs"
    config.pipeline.datamanager.data = tmp_path / "my data"
    config.set_timestamp()
    config.save_config()
    return config.get_base_dir() / "config.yml"


def test_a_real_config_loads_as_nerfstudio_loads_it(saved_config):
    ours = load_config(saved_config)
    theirs = yaml.load(saved_config.read_text(), Loader=yaml.Loader)
    assert ours == theirs
    assert ours.pipeline.datamanager.data.name == "my data"
    assert ours.pipeline.model.stages == ernerf_method.config.pipeline.model.stages


@pytest.mark.parametrize(
    "payload, tag",
    [
        ("!!python/object/apply:os.system ['touch {marker}']", "os.system"),
        ("!!python/object/apply:subprocess.check_output [['touch', '{marker}']]", "subprocess"),
        ("!!python/name:os.system", "os.system"),
        ('!!python/object/new:builtins.exec [\'open("{marker}", "w")\']', "python/object/new"),
        ("!!python/object/apply:nerfstudio.utils.scripts.run_command ['touch {marker}']", "run_command"),
        ("!!python/name:nerfstudio.utils.scripts.run_command", "run_command"),
    ],
)
def test_a_config_that_would_run_code_is_refused_and_runs_nothing(saved_config, tmp_path, payload, tag):
    marker = tmp_path / "ran"
    text = saved_config.read_text().replace("method_name: ernerf", "method_name: " + payload.format(marker=marker))
    saved_config.write_text(text)
    with pytest.raises(UntrustedConfigError) as raised:
        load_config(saved_config)
    message = str(raised.value)
    assert str(saved_config) in message and "line" in message and tag in message
    assert "\n" not in message
    assert not marker.exists()


def test_a_file_that_is_not_yaml_is_named(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("{unclosed: [")
    with pytest.raises(UntrustedConfigError, match="config.yml"):
        load_config(path)


FLAT_TORSO_CONFIG = Path(__file__).parent / "data" / "config_flat_torso.yml"
"""ernerf-tiny's config.yml as written before the torso settings moved into `torso` (torso_num_levels: 8, ...)."""


@pytest.mark.parametrize("reader", ["ernerf-render", "ns-commands"])
def test_a_config_yml_of_an_earlier_version_keeps_its_torso_settings(reader):
    if reader == "ernerf-render":
        config = load_config(FLAT_TORSO_CONFIG)
    else:
        config = yaml.load(FLAT_TORSO_CONFIG.read_text(), Loader=yaml.Loader)
    model = config.pipeline.model
    assert model.torso == TorsoConfig(num_levels=8, log2_hashmap_size=12, max_resolution=256)
    assert model.torso == ernerf_tiny_method.config.pipeline.model.torso
    assert not [name for name in vars(model) if name.startswith("torso_") or name == "anchor_weight"]
