"""The README's feed mapping tables name every type the code's tables read (docs match code)."""

from __future__ import annotations

import re
from pathlib import Path

from temporaldb.feeds import live, stats_v2, stats_v3

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("### Importing real data") : README.index("### Asking")]


def table_after(heading: str) -> list[str]:
    """The first cells of the Markdown table that follows `heading`."""
    rest = SECTION[SECTION.index(heading) :]
    rows = re.search(r"\n(\|.*\|\n)+", rest)
    assert rows is not None, heading
    return [line.split("|")[1].strip() for line in rows.group(0).strip().splitlines()[2:]]


def paragraph_after(heading: str) -> str:
    rest = SECTION[SECTION.index(heading) + len(heading) :]
    return " ".join(rest.split("\n\n")[0].split())


def test_every_v2_event_type_and_foul_action_is_in_the_readme() -> None:
    cells = table_after("playbyplayv2 (")
    documented = {int(number) for cell in cells for number in re.findall(r"^\d+(?: / \d+)?", cell)[0].split(" / ")}
    assert documented == {msg_type for msg_type, _ in stats_v2.MAPPING}
    actions = paragraph_after("v2 foul actions:")
    assert {int(n) for n in re.findall(r"(?:^|, )(\d+) ", actions)} == set(stats_v2.FOUL_KIND_BY_ACTION)


def test_every_v3_action_type_and_foul_subtype_is_in_the_readme() -> None:
    cells = table_after("playbyplayv3 (")
    assert {"" if cell == '"" (blank)' else cell for cell in cells} == set(stats_v3.ACTION_TYPES)
    subtypes = paragraph_after("v3 foul subTypes:").rstrip(".").split(", ")
    assert set(subtypes) == set(stats_v3.FOUL_KIND_BY_SUBTYPE)


def test_every_live_action_type_and_foul_type_is_in_the_readme() -> None:
    cells = table_after("Live play-by-play (")
    documented = {word for cell in cells for word in re.findall(r"[a-z0-9]+", cell.split(" / ")[0])}
    action_types = {action for action, _ in live.ACTIONS}
    assert action_types <= documented, action_types - documented
    fouls = paragraph_after("Live foul (subType / descriptor):").rstrip(".")
    groups = dict(re.findall(r"(\w+)(?: \(([^)]*)\))?(?:, |$)", fouls))
    documented_fouls = {
        (kind, "" if descriptor == "none" else descriptor)
        for kind, descriptors in groups.items()
        for descriptor in (descriptors.split(", ") if descriptors else ["none"])
    }
    assert documented_fouls == set(live.FOUL_KIND_BY_TYPE)
