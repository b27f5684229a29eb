"""Stack configuration as the Pulumi engine would hand it to the program.

The engine merges the project's declared defaults (`Pulumi.yaml` `config:`)
with the stack file (`Pulumi.<stack>.yaml`) and passes every value as a
string: YAML scalars as their text, lists and maps as JSON. Doing the same
here lets the offline plan and the tests run the real program unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class StackConfigError(Exception):
    """A project or stack file is missing or unreadable."""


@dataclass(frozen=True)
class ProjectFiles:
    root: Path

    @property
    def project_file(self) -> Path:
        return self.root / "Pulumi.yaml"

    def stack_file(self, stack: str) -> Path:
        return self.root / f"Pulumi.{stack}.yaml"

    def stacks(self) -> list[str]:
        return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in self.root.glob("Pulumi.*.yaml"))


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above `start` that holds Pulumi.yaml."""
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    raise StackConfigError(
        f"no Pulumi.yaml in {start} or any folder above it; run from the project or pass --project-dir"
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackConfigError(f"{path} does not exist") from None
    except yaml.YAMLError as error:
        raise StackConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise StackConfigError(f"{path} must hold a YAML mapping")
    return data


def engine_string(value: object) -> str:
    """Render a YAML value the way the engine passes config to a program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def declared_config(files: ProjectFiles) -> dict[str, dict[str, Any]]:
    """The project's `config:` declarations, keyed by their namespaced name."""
    project = _read_yaml(files.project_file)
    name = project.get("name")
    declarations = project.get("config") or {}
    if not isinstance(declarations, dict):
        raise StackConfigError(f"{files.project_file}: config must be a mapping")
    return {(key if ":" in key else f"{name}:{key}"): spec for key, spec in declarations.items()}


def load_stack_config(files: ProjectFiles, stack: str, *, skip_encrypted: bool = False) -> dict[str, str]:
    """Declared defaults overlaid with the stack file, as engine strings.

    An encrypted (`secure:`) value cannot be read without Pulumi: it is an error,
    or with `skip_encrypted` left out (for readers that do not need it, such as
    the commands that only want the region and the IAM users).
    """
    path = files.stack_file(stack)
    if not path.is_file():
        known = ", ".join(files.stacks()) or "none"
        raise StackConfigError(f"stack {stack!r} has no {path.name} in {files.root} (stacks: {known})")
    merged: dict[str, str] = {
        key: engine_string(spec["default"])
        for key, spec in declared_config(files).items()
        if isinstance(spec, dict) and "default" in spec
    }
    stack_config = _read_yaml(path).get("config") or {}
    if not isinstance(stack_config, dict):
        raise StackConfigError(f"{path}: config must be a mapping")
    for key, value in stack_config.items():
        if isinstance(value, dict) and "secure" in value:
            if skip_encrypted:
                continue
            raise StackConfigError(f"{path}: {key} is encrypted; the offline plan cannot read secrets")
        merged[str(key)] = engine_string(value)
    return merged
