"""Packaging: the torch requirement in pyproject.toml and the torch.load default it exists for."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _torch_requirement() -> Requirement:
    with PYPROJECT.open("rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    found = [Requirement(d) for d in dependencies if Requirement(d).name == "torch"]
    assert len(found) == 1, f"expected one torch requirement in {PYPROJECT}, found {found}"
    return found[0]


def test_pyproject_requires_torch_2_6() -> None:
    # Nerfstudio's checkpoint loading relies on torch >= 2.6, where torch.load defaults to weights_only=True.
    spec = _torch_requirement().specifier
    assert not spec.contains("2.5.1"), f"torch{spec} admits 2.5.1"
    assert spec.contains("2.6.0"), f"torch{spec} refuses 2.6.0"
    # The builds that ./setup.sh pins (the pip cap on these machines) must stay allowed.
    assert spec.contains("2.14.1"), f"torch{spec} refuses the pinned 2.14.1"


def test_installed_torch_satisfies_requirement() -> None:
    spec = _torch_requirement().specifier
    installed = Version(torch.__version__)  # may carry a local part, e.g. 2.14.1+cu130
    assert spec.contains(installed, prereleases=True), f"torch {installed} does not satisfy torch{spec}"


class _Payload:
    """An arbitrary picklable object: a checkpoint must not be able to smuggle one in."""

    def __init__(self) -> None:
        self.value = 3


def test_torch_load_refuses_arbitrary_objects_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_WEIGHTS_ONLY_LOAD"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "payload.pt"
    torch.save({"payload": _Payload(), "weights": torch.ones(2)}, path)

    with pytest.raises(pickle.UnpicklingError, match="weights_only"):
        torch.load(path)

    # The file itself is fine: an explicit opt-out loads it, and plain tensors load by default.
    assert torch.load(path, weights_only=False)["payload"].value == 3
    tensors = tmp_path / "tensors.pt"
    torch.save({"weights": torch.ones(2)}, tensors)
    assert torch.equal(torch.load(tensors)["weights"], torch.ones(2))
