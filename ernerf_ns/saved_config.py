"""Read a trained run's `config.yml` without letting the file run code, and find its newest checkpoint.

Nerfstudio saves configs with PyYAML's Python tags and loads them with `yaml.Loader`, which builds any
object a tag names: `!!python/object/apply:os.system [...]` runs a shell command on load. People share
trained models, so `ernerf-render` (and anything else of ours that loads a run) goes through `load_config`,
which builds only what a Nerfstudio config holds: dataclass configs of `nerfstudio` and `ernerf_ns`, the
classes they name as `_target`s (never called here), paths, enums of those packages, tuples and plain types.
Any other tag is refused with the file, line and tag.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import pathlib
from pathlib import Path
from typing import Any, Optional

import yaml

from ernerf_ns.errors import UserError

TRUSTED_PACKAGES = ("nerfstudio.", "ernerf_ns.")
"""Modules whose dataclass configs and enums a config may build."""
TRUSTED_NAME_PACKAGES = TRUSTED_PACKAGES + ("torch.optim.",)
"""Modules whose classes a config may name (optimisers are named by class)."""
TRUSTED_FUNCTIONS = frozenset({"nerfstudio.data.utils.nerfstudio_collate.nerfstudio_collate"})
"""The only functions a config may name: the collate function Nerfstudio's datamanagers store."""
PATH_CLASSES = frozenset({"pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath"})
"""Path types a config stores as `!!python/object/apply:pathlib.PosixPath [parts...]`."""


class UntrustedConfigError(UserError):
    """A config file names something other than config classes, paths and plain values."""


def _resolve(dotted: str) -> Any:
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader plus the Python tags of Nerfstudio configs, each checked against the trusted packages."""

    def refuse(self, node: yaml.Node, what: str) -> UntrustedConfigError:
        name = getattr(self, "name", "config")
        return UntrustedConfigError(
            f"{name}, line {node.start_mark.line + 1}: refusing {node.tag} ({what}); only Nerfstudio / ernerf_ns "
            "config classes, paths and plain values are read from a config file"
        )

    def trusted(self, node: yaml.Node, dotted: str, packages: tuple) -> Any:
        if not dotted.startswith(packages):
            raise self.refuse(node, "outside the trusted packages")
        try:
            return _resolve(dotted)
        except (ImportError, AttributeError) as err:
            raise self.refuse(node, f"cannot be found: {err}") from err


def _construct_object(loader: _ConfigLoader, suffix: str, node: yaml.Node) -> Any:
    cls = loader.trusted(node, suffix, TRUSTED_PACKAGES)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise loader.refuse(node, "not a dataclass config")
    instance = cls.__new__(cls)
    yield instance
    state = loader.construct_mapping(node, deep=True) if isinstance(node, yaml.MappingNode) else {}
    if hasattr(instance, "__setstate__"):  # as PyYAML's own loader (ns-* commands) does
        instance.__setstate__(state)
    else:
        instance.__dict__.update(state)


def _construct_apply(loader: _ConfigLoader, suffix: str, node: yaml.Node) -> Any:
    args = loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode) else []
    if suffix in PATH_CLASSES:
        return getattr(pathlib, suffix.rpartition(".")[2])(*args)
    cls = loader.trusted(node, suffix, TRUSTED_PACKAGES)
    if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
        raise loader.refuse(node, "only paths and enums are rebuilt from arguments")
    return cls(*args)


def _construct_name(loader: _ConfigLoader, suffix: str, node: yaml.Node) -> Any:
    value = loader.trusted(node, suffix, TRUSTED_NAME_PACKAGES)
    if not isinstance(value, type) and suffix not in TRUSTED_FUNCTIONS:
        raise loader.refuse(node, "names a function, not a class")
    return value


def _construct_tuple(loader: _ConfigLoader, node: yaml.Node) -> tuple:
    return tuple(loader.construct_sequence(node, deep=True))


_ConfigLoader.add_multi_constructor("tag:yaml.org,2002:python/object:", _construct_object)
_ConfigLoader.add_multi_constructor("tag:yaml.org,2002:python/object/apply:", _construct_apply)
_ConfigLoader.add_multi_constructor("tag:yaml.org,2002:python/name:", _construct_name)
_ConfigLoader.add_constructor("tag:yaml.org,2002:python/tuple", _construct_tuple)


def newest_checkpoint(checkpoint_dir: Path) -> Optional[Path]:
    """The highest-step `step-*.ckpt` of a run (Nerfstudio zero-pads the step), or None without one."""
    checkpoint_dir = Path(checkpoint_dir)
    return max(checkpoint_dir.glob("step-*.ckpt"), default=None) if checkpoint_dir.is_dir() else None


def load_config(path: Path) -> Any:
    """The object a Nerfstudio `config.yml` describes, built without running anything the file names."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise UntrustedConfigError(f"{path}: cannot read the config ({err.strerror or err})") from err
    loader = _ConfigLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.constructor.ConstructorError as err:  # a tag SafeLoader does not know (python/object/new, ...)
        line = f", line {err.problem_mark.line + 1}" if err.problem_mark is not None else ""
        raise UntrustedConfigError(f"{path}{line}: refusing it, {err.problem}") from err
    except yaml.YAMLError as err:
        raise UntrustedConfigError(f"{path}: not a YAML config ({err})") from err
    finally:
        loader.dispose()
