"""Reading raw config strings (as the Pulumi engine hands them over) while collecting every problem.

infra/settings.py and infra/settings_aurora.py parse with one reader, so a
stack file with several mistakes gets them all in one error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Final

PROJECT: Final = "temporaldb"


class ConfigReader:
    """Parses raw config strings, recording problems instead of stopping."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def problem(self, key: str, why: str) -> None:
        shown = self.raw.get(full_key(key), "<unset>")
        self.problems.append(f"{full_key(key)} = {shown}: {why}")

    def text(self, key: str) -> str:
        value = self.raw.get(full_key(key))
        if value is None:
            self.problems.append(f"{full_key(key)} is not set; declare it in the stack file")
            return ""
        return value.strip()

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.text(key)
        try:
            number = int(value)
        except ValueError:
            if full_key(key) in self.raw:
                self.problem(key, "must be a whole number")
            return low
        if not low <= number <= high:
            self.problem(key, f"must be between {low} and {high}")
        return number

    def half_steps(self, key: str, low: float, high: float) -> float:
        """A number in steps of 0.5, such as Aurora capacity units: 0, 0.5, 4 or 12.5."""
        value = self.text(key)
        try:
            number = float(value)
        except ValueError:
            if full_key(key) in self.raw:
                self.problem(key, "must be a number in steps of 0.5, e.g. 0.5 or 4")
            return low
        if not math.isfinite(number) or not (number * 2).is_integer():
            self.problem(key, "must be a number in steps of 0.5, e.g. 0.5 or 4")
            return low
        if not low <= number <= high:
            self.problem(key, f"must be between {low:g} and {high:g}")
        return number

    def choice(self, key: str, options: Sequence[str]) -> str:
        value = self.text(key)
        if value not in options and full_key(key) in self.raw:
            self.problem(key, f"must be one of {', '.join(options)}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.text(key).lower()
        if value not in ("true", "false"):
            if full_key(key) in self.raw:
                self.problem(key, "must be true or false")
            return False
        return value == "true"

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.text(key)
        if value == "":
            return ()
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            self.problem(key, "must be a YAML list of strings")
            return ()
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            self.problem(key, "must be a YAML list of strings")
            return ()
        return tuple(item.strip() for item in items)


def full_key(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"
