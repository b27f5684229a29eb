"""Official box scores: the end-of-game lines a feed's play-by-play is reconciled with, and the roster it names.

Four documents are read (`looks_like` names them):
- `traditional_v2`: stats.nba.com boxscoretraditionalv2 (resultSets PlayerStats, TeamStats);
- `summary_v2`: stats.nba.com boxscoresummaryv2 (GameSummary, LineScore, OtherStats, InactivePlayers). It has
  no player lines: it completes a traditional box score (`parse_summary`, then `box_score(..., summary=...)`);
- `traditional_v3`: stats.nba.com boxscoretraditionalv3 (boxScoreTraditional.homeTeam/awayTeam);
- `live_box`: the cdn.nba.com live box score (game.homeTeam/awayTeam, with players and team statistics).

Decisions, the same for every format:
- A player who did not play (v2 MIN null, a v3 DNP comment with no minutes, live `played` "0", all stats zero)
  has no line: a line means games played = 1 (see model.STATS). The player is still in `BoxFacts.players`
  (for name resolution) and absent from `BoxFacts.played`.
- A team line counts its players only, as every official team total does (v2 TeamStats REB and TO, live
  reboundsPersonal and turnovers). Team rebounds and team turnovers are given apart, in
  `BoxScore.team_rebounds` / `team_turnovers`, when the documents have them: summary TEAM_REBOUNDS and
  TOTAL_TURNOVERS minus the team's TO (checked against TEAM_TURNOVERS), live reboundsTeam and turnoversTeam
  (checked against reboundsTotal and turnoversTotal). A team missing from those dicts means "not given": a
  traditional box score alone (v2 or v3) gives neither. The play-by-play's team total is line + team figure;
  the summary does not split team rebounds into offensive and defensive (the live box does, unused here).
- Only end-of-game box scores become a BoxScore. A range box (v2 `parameters`, or the v3 `meta.request` query:
  RangeType 2 with a game-time window in tenths of a second that starts after 0 or ends before the game does;
  RangeType 1 with periods that leave one out), a game whose status is not final (summary GAME_STATUS_ID, live
  gameStatus), or a box whose team points differ from the summary's final score raises PartialBoxScoreError.
  `facts` still reads such documents: names and teams do not depend on the window.
- Game ids are ints (0021600270 -> 21600270) and are printed with the feeds' ten digits. `expect_game_id`
  refuses a document of another game; a summary must be of the same game, and teams, as its box score.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from temporaldb.feeds.model import STATS, BoxLine, BoxScore, FeedError, FeedPlayer, FeedTeam

FORMATS: Final = ("traditional_v2", "summary_v2", "traditional_v3", "live_box")
FINAL_STATUS: Final = 3
"""GAME_STATUS_ID / gameStatus of a game that is over (1 scheduled, 2 in progress)."""
REGULATION_TENTHS: Final = 28800
OVERTIME_TENTHS: Final = 3000
REGULATION_PERIODS: Final = 4

V2_COLUMNS: Final = {
    "points": "PTS", "fgm": "FGM", "fga": "FGA", "fg3m": "FG3M", "fg3a": "FG3A", "ftm": "FTM", "fta": "FTA",
    "oreb": "OREB", "dreb": "DREB", "rebounds": "REB", "assists": "AST", "steals": "STL", "blocks": "BLK",
    "turnovers": "TO", "fouls": "PF",
}  # fmt: skip
"""Canonical stat -> boxscoretraditionalv2 column (turnovers: TO, or TOV in some versions)."""
CAMEL_KEYS: Final = {
    "points": "points", "fgm": "fieldGoalsMade", "fga": "fieldGoalsAttempted", "fg3m": "threePointersMade",
    "fg3a": "threePointersAttempted", "ftm": "freeThrowsMade", "fta": "freeThrowsAttempted",
    "oreb": "reboundsOffensive", "dreb": "reboundsDefensive", "rebounds": "reboundsTotal", "assists": "assists",
    "steals": "steals", "blocks": "blocks", "turnovers": "turnovers", "fouls": "foulsPersonal",
}  # fmt: skip
"""Canonical stat -> key of a v3 or live `statistics` object."""
_V2_BOX_COLUMNS: Final = frozenset({"PLAYER_ID", "TEAM_ID", "MIN", "PTS", "FGM", "OREB", "AST", "PF"})
_WINDOW_KEYS: Final = frozenset({"rangetype", "startrange", "endrange", "startperiod", "endperiod"})


class PartialBoxScoreError(FeedError):
    """A box score that is not the end of its game: a range box, an unfinished game, points that are not final."""


@dataclass(frozen=True)
class Summary:
    """What a boxscoresummaryv2 adds to a traditional box score."""

    game_id: int
    source: str
    home: FeedTeam
    away: FeedTeam
    game_date: dt.date | None
    """GAME_DATE_EST: the game's date in US Eastern time (the feed gives no tip-off time)."""
    status: int | None
    status_text: str
    periods: int | None
    """Periods played (LIVE_PERIOD, else the LineScore overtimes)."""
    final_points: dict[int, int]
    team_rebounds: dict[int, int]
    team_turnovers: dict[int, int]
    """TEAM_TURNOVERS, per team that has it."""
    total_turnovers: dict[int, int]
    """TOTAL_TURNOVERS (players' and team turnovers), per team that has it."""
    inactive: tuple[FeedPlayer, ...]


@dataclass(frozen=True)
class BoxFacts:
    """The game and the people a box score names, for the importers to resolve names and teams."""

    game_id: int
    source: str
    teams: tuple[FeedTeam, FeedTeam]
    """Both teams, home first when known, else in the document's order."""
    home: FeedTeam | None
    """None when the documents do not say (a v2 traditional box score without its summary)."""
    away: FeedTeam | None
    players: tuple[FeedPlayer, ...]
    """Every player listed: those who played, did not play (DNP) and, from a summary, the inactive ones."""
    played: frozenset[int]
    """The players with a box line."""
    game_date: dt.date | None
    """The game's date in US Eastern time, when given."""
    tipoff_at: dt.datetime | None
    """The scheduled tip-off (live gameTimeUTC), when given."""
    final: bool | None
    """Whether the game is over, when a status is given."""


@dataclass(frozen=True)
class BoxReading:
    """One box document read once (`box_score_and_facts`): what `box_score` and `facts` give for it."""

    box_score: BoxScore | None
    """The end-of-game box score; None when the box is partial."""
    facts: BoxFacts
    partial: PartialBoxScoreError | None
    """Why the box is not an end-of-game box score (what `box_score` raises), or None."""


@dataclass
class _Box:
    """One parsed box document, before it is checked as an end-of-game box score."""

    game_id: int
    source: str
    teams: list[FeedTeam]
    home_id: int | None
    lines: list[BoxLine]
    players: list[FeedPlayer]
    played: set[int]
    team_rebounds: dict[int, int] = field(default_factory=dict)
    team_turnovers: dict[int, int] = field(default_factory=dict)
    window: Mapping[str, Any] | None = None
    status: int | None = None
    status_text: str = ""
    game_date: dt.date | None = None
    tipoff_at: dt.datetime | None = None
    listed: set[int] = field(default_factory=set)
    """The ids of `players`, to refuse a player listed twice without a scan per player."""

    def team_line(self, team_id: int) -> BoxLine:
        return next(line for line in self.lines if line.subject_kind == "t" and line.subject_id == team_id)


# ---------------------------------------------------------------------------------------------------- recognising


def looks_like(document: object) -> str | None:
    """The box format of a parsed JSON document (one of FORMATS), or None for anything else."""
    if not isinstance(document, Mapping):
        return None
    sets = _result_set_headers(document)
    players = sets.get("PlayerStats", set())
    if "TeamStats" in sets and players >= _V2_BOX_COLUMNS and players & {"TO", "TOV"}:
        return "traditional_v2"  # not boxscoreadvancedv2 & co., which share the result set names
    if "PlayerStats" not in sets and {"GameSummary", "LineScore", "OtherStats"} <= sets.keys():
        return "summary_v2"
    for key, kind in (("boxScoreTraditional", "traditional_v3"), ("game", "live_box")):
        root = document.get(key)
        if isinstance(root, Mapping) and _is_team(root.get("homeTeam")) and _is_team(root.get("awayTeam")):
            return kind
    return None


def _is_team(value: object) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("players"), list) and "teamId" in value


def _result_set_headers(document: Mapping[str, Any]) -> dict[str, set[str]]:
    sets = document.get("resultSets")
    if not isinstance(sets, list):
        return {}
    return {
        str(rs.get("name")): {str(h) for h in rs.get("headers", [])}
        for rs in sets
        if isinstance(rs, Mapping) and isinstance(rs.get("headers"), list)
    }


# ---------------------------------------------------------------------------------------------------- public API


def read_json(path: str | Path) -> Any:
    """A feed file's JSON; FeedError naming the file when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise FeedError(f"{path}: cannot read JSON: {exc}") from exc


def box_score(
    document: object, source: str, *, summary: Summary | None = None, expect_game_id: int | str | None = None
) -> BoxScore:
    """The end-of-game BoxScore of one box document (with its summary, for a v2 or v3 traditional box score).

    Raises FeedError for a document of no known box format, another game than `expect_game_id`, a summary of
    another game or other teams; PartialBoxScoreError for a box that is not the whole, finished game.
    """
    box = _combined(document, source, summary, expect_game_id)
    partial = _partial_error(box, summary)
    if partial is not None:
        raise partial
    return _box_score(box, summary)


def facts(
    document: object, source: str, *, summary: Summary | None = None, expect_game_id: int | str | None = None
) -> BoxFacts:
    """The game, teams and players a box document (and its summary) names; partial boxes are read too."""
    return _facts(_combined(document, source, summary, expect_game_id), summary)


def box_score_and_facts(
    document: object, source: str, *, summary: Summary | None = None, expect_game_id: int | str | None = None
) -> BoxReading:
    """`box_score` and `facts` of one box document from a single reading of it, for an importer that needs both.

    Raises what `box_score` raises, except PartialBoxScoreError: a partial box gives its facts with the error in
    `partial` (and no box score), as `facts` reads such a box.
    """
    box = _combined(document, source, summary, expect_game_id)
    facts = _facts(box, summary)  # before _box_score, which completes the box's team turnovers from the summary
    partial = _partial_error(box, summary)
    if partial is not None:
        return BoxReading(None, facts, partial)
    return BoxReading(_box_score(box, summary), facts, None)


def _box_score(box: _Box, summary: Summary | None) -> BoxScore:
    if summary is not None:
        box.team_turnovers = _summary_turnovers(box, summary)
    return BoxScore(
        game_id=box.game_id,
        lines=tuple(box.lines),
        source=box.source,
        team_rebounds=dict(box.team_rebounds),
        team_turnovers=dict(box.team_turnovers),
    )


def _facts(box: _Box, summary: Summary | None) -> BoxFacts:
    by_id = {team.team_id: team for team in box.teams}
    home = by_id.get(box.home_id) if box.home_id is not None else None
    away = next((team for team in box.teams if team is not home), None) if home else None
    teams = (home, away) if home and away else (box.teams[0], box.teams[1])
    players = list(box.players)
    listed = {player.player_id for player in players}
    if summary:
        players += [player for player in summary.inactive if player.player_id not in listed]
    final = None if box.status is None else box.status == FINAL_STATUS
    return BoxFacts(
        game_id=box.game_id,
        source=box.source,
        teams=teams,
        home=home,
        away=away,
        players=tuple(players),
        played=frozenset(box.played),
        game_date=box.game_date,
        tipoff_at=box.tipoff_at,
        final=final,
    )


def parse_summary(document: object, source: str, *, expect_game_id: int | str | None = None) -> Summary:
    """A boxscoresummaryv2: game facts, final score, team rebounds and turnovers, inactive players."""
    if looks_like(document) != "summary_v2" or not isinstance(document, Mapping):
        raise FeedError(f"{source}: not a boxscoresummaryv2 (no GameSummary, LineScore and OtherStats)")
    game = _rows(document, "GameSummary", source)
    if len(game) != 1:
        raise FeedError(f"{source}: GameSummary has {len(game)} rows, expected 1")
    row = game[0]
    game_id = _game_id(row.get("GAME_ID"), source)
    _expect(game_id, expect_game_id, source, "summary")
    home_id = _int(row.get("HOME_TEAM_ID"), source, "HOME_TEAM_ID")
    away_id = _int(row.get("VISITOR_TEAM_ID"), source, "VISITOR_TEAM_ID")
    line_score = {_int(r.get("TEAM_ID"), source, "LineScore TEAM_ID"): r for r in _rows(document, "LineScore", source)}
    if set(line_score) != {home_id, away_id}:
        raise FeedError(f"{source}: LineScore teams {sorted(line_score)} are not the home and visitor teams")
    other = {_int(r.get("TEAM_ID"), source, "OtherStats TEAM_ID"): r for r in _rows(document, "OtherStats", source)}
    if not set(other) <= {home_id, away_id}:
        raise FeedError(f"{source}: OtherStats teams {sorted(other)} are not the home and visitor teams")
    status = _optional_int(row.get("GAME_STATUS_ID"), source, "GAME_STATUS_ID")
    periods = _optional_int(row.get("LIVE_PERIOD"), source, "LIVE_PERIOD") or _line_score_periods(line_score)
    return Summary(
        game_id=game_id,
        source=source,
        home=_summary_team(line_score[home_id], home_id),
        away=_summary_team(line_score[away_id], away_id),
        game_date=_date(row.get("GAME_DATE_EST"), source),
        status=status,
        status_text=str(row.get("GAME_STATUS_TEXT") or "").strip(),
        periods=periods,
        final_points=_per_team(line_score, "PTS", source),
        team_rebounds=_per_team(other, "TEAM_REBOUNDS", source),
        team_turnovers=_per_team(other, "TEAM_TURNOVERS", source),
        total_turnovers=_per_team(other, "TOTAL_TURNOVERS", source),
        inactive=tuple(
            FeedPlayer(
                _int(r.get("PLAYER_ID"), source, "PLAYER_ID"),
                _join_name(r.get("FIRST_NAME"), r.get("LAST_NAME")),
                _int(r.get("TEAM_ID"), source, "TEAM_ID"),
            )
            for r in _rows(document, "InactivePlayers", source, required=False)
        ),
    )


def read_box_score(
    path: str | Path, summary_path: str | Path | None = None, *, expect_game_id: int | str | None = None
) -> BoxScore:
    """`box_score` of a file (and its summary file)."""
    summary = parse_summary(read_json(summary_path), str(summary_path)) if summary_path else None
    return box_score(read_json(path), str(path), summary=summary, expect_game_id=expect_game_id)


def read_facts(
    path: str | Path, summary_path: str | Path | None = None, *, expect_game_id: int | str | None = None
) -> BoxFacts:
    """`facts` of a file (and its summary file)."""
    summary = parse_summary(read_json(summary_path), str(summary_path)) if summary_path else None
    return facts(read_json(path), str(path), summary=summary, expect_game_id=expect_game_id)


# ---------------------------------------------------------------------------------------------------- combining


def _combined(document: object, source: str, summary: Summary | None, expect: int | str | None) -> _Box:
    kind = looks_like(document)
    if kind is None or not isinstance(document, Mapping):
        raise FeedError(
            f"{source}: not a box score (expected boxscoretraditionalv2, boxscoretraditionalv3 or a live box score)"
        )
    if kind == "summary_v2":
        raise FeedError(f"{source}: a boxscoresummaryv2 has no player lines; give it as the summary of its box score")
    if kind == "live_box" and summary is not None:
        raise FeedError(f"{source}: a live box score has its own team rebounds and turnovers; it takes no summary")
    box = {"traditional_v2": _parse_v2, "traditional_v3": _parse_v3, "live_box": _parse_live}[kind](document, source)
    _expect(box.game_id, expect, source)
    if summary is not None:
        _apply_summary(box, summary)
    return box


def _apply_summary(box: _Box, summary: Summary) -> None:
    if summary.game_id != box.game_id:
        raise FeedError(
            f"{summary.source}: summary of game {summary.game_id:010d} given with {box.source} "
            f"(game {box.game_id:010d})"
        )
    teams = {summary.home.team_id, summary.away.team_id}
    if teams != {team.team_id for team in box.teams}:
        raise FeedError(
            f"{summary.source}: summary teams {sorted(teams)} differ from {box.source} "
            f"teams {sorted(team.team_id for team in box.teams)}"
        )
    if box.home_id is not None and box.home_id != summary.home.team_id:
        raise FeedError(f"{summary.source}: home team {summary.home.team_id} differs from {box.source} ({box.home_id})")
    box.home_id = summary.home.team_id
    box.source = f"{box.source} + {summary.source}"
    box.status, box.status_text = summary.status, summary.status_text
    box.game_date = box.game_date or summary.game_date
    box.team_rebounds = dict(summary.team_rebounds)


def _summary_turnovers(box: _Box, summary: Summary) -> dict[int, int]:
    """Team turnovers: TOTAL_TURNOVERS minus the team's (players') TO, checked against TEAM_TURNOVERS."""
    team_turnovers: dict[int, int] = {}
    for team in box.teams:
        players_to = box.team_line(team.team_id).stats["turnovers"]
        given, total = summary.team_turnovers.get(team.team_id), summary.total_turnovers.get(team.team_id)
        derived = None if total is None else total - players_to
        if derived is not None and (derived < 0 or given not in (None, derived)):
            raise FeedError(
                f"{box.source}: team {team.team_id} TOTAL_TURNOVERS {total} - TO {players_to} = {derived}, "
                f"but TEAM_TURNOVERS is {given}" + (" and team turnovers cannot be negative" if derived < 0 else "")
            )
        chosen = derived if derived is not None else given
        if chosen is not None:
            team_turnovers[team.team_id] = chosen
    return team_turnovers


def _partial_error(box: _Box, summary: Summary | None) -> PartialBoxScoreError | None:
    problem = _partial(box, summary)
    if not problem:
        return None
    return PartialBoxScoreError(f"{box.source}: {problem}; refused as an end-of-game box score")


def _partial(box: _Box, summary: Summary | None) -> str | None:
    """Why the box is not the end of its game, or None."""
    if box.status is not None and box.status != FINAL_STATUS:
        return f"game {box.game_id:010d} is not over (status {box.status} {box.status_text!r})"
    if box.window is not None:
        problem = _window_problem(box.window, summary.periods if summary else None)
        if problem:
            return f"a range box score ({problem}) covers part of game {box.game_id:010d}, not the whole game"
    if summary is not None:
        for team_id, final in sorted(summary.final_points.items()):
            points = box.team_line(team_id).stats["points"]
            if points != final:
                return f"team {team_id} has {points} points in the box score but {final} in the final score"
    return None


def _window_problem(parameters: Mapping[str, Any], periods: int | None) -> str | None:
    """The part of the game a box's request parameters leave out, or None when they cover all of it."""
    lowered = {str(key).lower(): value for key, value in parameters.items()}

    def number(key: str) -> int | None:
        value = lowered.get(key.lower())
        try:
            return None if value is None or value == "" else int(value)
        except (TypeError, ValueError):
            return None

    range_type = number("RangeType") or 0
    played = periods if periods and periods >= REGULATION_PERIODS else REGULATION_PERIODS
    if range_type == 2:
        start, end = number("StartRange") or 0, number("EndRange")
        length = REGULATION_TENTHS + OVERTIME_TENTHS * (played - REGULATION_PERIODS)
        if start > 0 or (end is not None and end < length):
            shown = "?" if end is None else _game_time(end)
            of = f" of a {_game_time(length)} game" if periods else ""
            return f"RangeType=2, StartRange={start}, EndRange={end}: game time {_game_time(start)}-{shown}{of}"
        return None
    if range_type != 0:
        start_period, end_period = number("StartPeriod") or 0, number("EndPeriod") or 0
        if start_period > 1 or 0 < end_period < played:
            return f"RangeType={range_type}, periods {start_period}-{end_period} of {played}"
    return None


def _game_time(tenths: int) -> str:
    minutes, rest = divmod(tenths, 600)
    return f"{minutes}:{rest // 10:02d}.{rest % 10}"


# ---------------------------------------------------------------------------------------------------- v2


def _parse_v2(document: Mapping[str, Any], source: str) -> _Box:
    parameters = document.get("parameters")
    window = parameters if isinstance(parameters, Mapping) else None
    team_rows = _rows(document, "TeamStats", source)
    if len(team_rows) != 2:
        raise FeedError(f"{source}: TeamStats has {len(team_rows)} rows, expected 2")
    game_ids = {_game_id(row.get("GAME_ID"), source) for row in [*team_rows, *_rows(document, "PlayerStats", source)]}
    if window is not None and window.get("GameID") is not None:
        game_ids.add(_game_id(window.get("GameID"), source))
    if len(game_ids) != 1:
        raise FeedError(f"{source}: rows of several games {sorted(f'{g:010d}' for g in game_ids)}")
    box = _Box(next(iter(game_ids)), source, [], None, [], [], set(), window=window)
    for row in team_rows:
        team_id = _int(row.get("TEAM_ID"), source, "TEAM_ID")
        name = _join_name(row.get("TEAM_CITY"), row.get("TEAM_NAME"))
        box.teams.append(FeedTeam(team_id, str(row.get("TEAM_ABBREVIATION") or ""), name))
    team_ids = {team.team_id for team in box.teams}
    if len(team_ids) != 2:
        raise FeedError(f"{source}: TeamStats lists team {box.teams[0].team_id} twice")
    for row in _rows(document, "PlayerStats", source):
        player_id = _int(row.get("PLAYER_ID"), source, "PLAYER_ID")
        where = f"player {player_id}"
        team_id = _team_of(row.get("TEAM_ID"), team_ids, source, where)
        minutes = row.get("MIN")
        stats = _v2_stats(row, source, where, absent_is_zero=minutes in (None, ""))
        played = _played(minutes, str(row.get("COMMENT") or ""), stats)
        _add_player(box, FeedPlayer(player_id, str(row.get("PLAYER_NAME") or "").strip(), team_id), stats, played)
    for row in team_rows:
        team_id = _int(row.get("TEAM_ID"), source, "TEAM_ID")
        box.lines.append(BoxLine("t", team_id, _v2_stats(row, source, f"team {team_id}", absent_is_zero=False)))
    return box


def _v2_stats(row: Mapping[str, Any], source: str, where: str, *, absent_is_zero: bool) -> dict[str, int]:
    stats: dict[str, int] = {}
    for stat, column in V2_COLUMNS.items():
        key = "TOV" if column == "TO" and "TO" not in row else column
        value = row.get(key)
        if value is None and absent_is_zero:
            stats[stat] = 0
        else:
            stats[stat] = _count(value, source, f"{where} {key}")
    return stats


# ---------------------------------------------------------------------------------------------------- v3 and live


def _parse_v3(document: Mapping[str, Any], source: str) -> _Box:
    root: Mapping[str, Any] = document["boxScoreTraditional"]
    home, away = root["homeTeam"], root["awayTeam"]
    box = _camel_box(root.get("gameId"), home, away, source)
    meta = document.get("meta")
    request = meta.get("request") if isinstance(meta, Mapping) else None
    if isinstance(request, str):
        query = dict(parse_qsl(urlsplit(request).query))
        if {key.lower() for key in query} & _WINDOW_KEYS:
            box.window = query
    for team in (home, away):
        team_id = _int(team.get("teamId"), source, "teamId")
        for player in _list(team, "players", source):
            player_id = _int(player.get("personId"), source, "personId")
            where = f"player {player_id}"
            statistics = player.get("statistics") or {}
            minutes = statistics.get("minutes")
            stats = _camel_stats(statistics, source, where, absent_is_zero=minutes in (None, ""))
            played = _played(minutes, str(player.get("comment") or ""), stats)
            name = _join_name(player.get("firstName"), player.get("familyName"))
            _add_player(box, FeedPlayer(player_id, name, team_id), stats, played)
        team_stats = _camel_stats(_mapping(team, "statistics", source), source, f"team {team_id}", absent_is_zero=False)
        box.lines.append(BoxLine("t", team_id, team_stats))
    return box


def _parse_live(document: Mapping[str, Any], source: str) -> _Box:
    game: Mapping[str, Any] = document["game"]
    home, away = game["homeTeam"], game["awayTeam"]
    box = _camel_box(game.get("gameId"), home, away, source)
    box.status = _optional_int(game.get("gameStatus"), source, "gameStatus")
    box.status_text = str(game.get("gameStatusText") or "").strip()
    box.tipoff_at = _instant(game.get("gameTimeUTC"), source)
    box.game_date = _date(game.get("gameEt") or game.get("gameTimeLocal"), source)
    for team in (home, away):
        team_id = _int(team.get("teamId"), source, "teamId")
        for player in _list(team, "players", source):
            player_id = _int(player.get("personId"), source, "personId")
            stats = _camel_stats(player.get("statistics") or {}, source, f"player {player_id}", absent_is_zero=True)
            flag = player.get("played")
            if flag is None:
                played = player.get("status") == "ACTIVE" and _played(
                    (player.get("statistics") or {}).get("minutes"), "", stats
                )
            else:
                played = str(flag) == "1" or any(stats.values())
            name = str(player.get("name") or "").strip() or _join_name(
                player.get("firstName"), player.get("familyName")
            )
            _add_player(box, FeedPlayer(player_id, name, team_id), stats, played)
        box.lines.append(_live_team_line(box, team_id, _mapping(team, "statistics", source)))
    return box


def _live_team_line(box: _Box, team_id: int, statistics: Mapping[str, Any]) -> BoxLine:
    """The team's players-only line; its team rebounds and turnovers go apart, checked against the totals."""
    source, where = box.source, f"team {team_id}"
    stats = _camel_stats(statistics, source, where, absent_is_zero=False, skip=("rebounds",))
    if statistics.get("reboundsPersonal") is not None:
        stats["rebounds"] = _count(statistics["reboundsPersonal"], source, f"{where} reboundsPersonal")
    else:
        stats["rebounds"] = stats["oreb"] + stats["dreb"]
    for stat, apart, total, extra in (
        ("rebounds", "reboundsTeam", "reboundsTotal", box.team_rebounds),
        ("turnovers", "turnoversTeam", "turnoversTotal", box.team_turnovers),
    ):
        if statistics.get(apart) is None:
            continue
        extra[team_id] = _count(statistics[apart], source, f"{where} {apart}")
        if statistics.get(total) is not None:
            given = _count(statistics[total], source, f"{where} {total}")
            if given != stats[stat] + extra[team_id]:
                raise FeedError(
                    f"{source}: {where} {total} {given} is not players' {stats[stat]} + {apart} {extra[team_id]}"
                )
    return BoxLine("t", team_id, {stat: stats[stat] for stat in STATS})


def _camel_box(game_id: object, home: Mapping[str, Any], away: Mapping[str, Any], source: str) -> _Box:
    teams = [
        FeedTeam(
            _int(team.get("teamId"), source, "teamId"),
            str(team.get("teamTricode") or ""),
            _join_name(team.get("teamCity"), team.get("teamName")),
        )
        for team in (home, away)
    ]
    if teams[0].team_id == teams[1].team_id:
        raise FeedError(f"{source}: home and away are the same team {teams[0].team_id}")
    return _Box(_game_id(game_id, source), source, teams, teams[0].team_id, [], [], set())


def _camel_stats(
    statistics: Mapping[str, Any], source: str, where: str, *, absent_is_zero: bool, skip: Sequence[str] = ()
) -> dict[str, int]:
    stats: dict[str, int] = {}
    for stat, key in CAMEL_KEYS.items():
        if stat in skip:
            continue
        value = statistics.get(key)
        if type(value) is int and value >= 0:  # most values: read without the checks (and the message) _count has
            stats[stat] = value
        else:
            stats[stat] = 0 if value is None and absent_is_zero else _count(value, source, f"{where} {key}")
    return stats


# ---------------------------------------------------------------------------------------------------- helpers


def _add_player(box: _Box, player: FeedPlayer, stats: dict[str, int], played: bool) -> None:
    if player.player_id in box.listed:
        raise FeedError(f"{box.source}: player {player.player_id} is listed twice")
    box.listed.add(player.player_id)
    box.players.append(player)
    if played:
        box.played.add(player.player_id)
        box.lines.append(BoxLine("p", player.player_id, stats))


def _played(minutes: object, comment: str, stats: Mapping[str, int]) -> bool:
    """A line with a stat played; without one, minutes played, or zero minutes and no DNP-like comment."""
    if any(stats.values()):
        return True
    text = "" if minutes is None else str(minutes).strip()
    if not text:
        return False
    seconds = _seconds(text)
    return seconds is None or seconds > 0 or not comment.strip()


def _seconds(text: str) -> float | None:
    """Seconds of 'MM:SS', 'MM:SS.f', 'PT12M34.00S' or a number of minutes; None when unreadable."""
    try:
        if text.startswith("PT") and text.endswith("S") and "M" in text:
            minutes, seconds = text[2:-1].split("M")
            return float(minutes) * 60 + float(seconds)
        if ":" in text:
            minutes, seconds = text.split(":", 1)
            return float(minutes) * 60 + float(seconds)
        return float(text) * 60
    except ValueError:
        return None


def _rows(document: Mapping[str, Any], name: str, source: str, *, required: bool = True) -> list[dict[str, Any]]:
    """The rows of a v2 result set as dicts keyed by header."""
    for result_set in document.get("resultSets") or []:
        if isinstance(result_set, Mapping) and result_set.get("name") == name:
            headers = result_set.get("headers")
            rows = result_set.get("rowSet")
            if not isinstance(headers, list) or not isinstance(rows, list):
                break
            if any(not isinstance(row, list) or len(row) != len(headers) for row in rows):
                raise FeedError(f"{source}: {name} has a row that does not match its {len(headers)} headers")
            return [dict(zip(headers, row, strict=True)) for row in rows]
    if required:
        raise FeedError(f"{source}: no {name} result set")
    return []


def _list(container: Mapping[str, Any], key: str, source: str) -> list[Mapping[str, Any]]:
    value = container.get(key)
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise FeedError(f"{source}: {key} is not a list of objects")
    return value


def _mapping(container: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = container.get(key)
    if not isinstance(value, Mapping):
        raise FeedError(f"{source}: team {container.get('teamId')} has no {key}")
    return value


def _team_of(value: object, team_ids: set[int], source: str, where: str) -> int:
    team_id = _int(value, source, f"{where} TEAM_ID")
    if team_id not in team_ids:
        raise FeedError(f"{source}: {where} is on team {team_id}, not one of the game's teams {sorted(team_ids)}")
    return team_id


def _summary_team(row: Mapping[str, Any], team_id: int) -> FeedTeam:
    return FeedTeam(
        team_id,
        str(row.get("TEAM_ABBREVIATION") or ""),
        _join_name(row.get("TEAM_CITY_NAME"), row.get("TEAM_NICKNAME")),
    )


def _line_score_periods(line_score: Mapping[int, Mapping[str, Any]]) -> int | None:
    """Regulation plus the overtimes in which someone scored; None when LineScore has no period columns."""
    if not any("PTS_QTR1" in row for row in line_score.values()):
        return None
    overtimes = [n for n in range(1, 11) for row in line_score.values() if row.get(f"PTS_OT{n}")]
    return REGULATION_PERIODS + max(overtimes, default=0)


def _per_team(rows: Mapping[int, Mapping[str, Any]], column: str, source: str) -> dict[int, int]:
    return {
        team_id: _count(row[column], source, f"team {team_id} {column}")
        for team_id, row in rows.items()
        if row.get(column) is not None
    }


def _join_name(first: object, last: object) -> str:
    return " ".join(part for part in (str(first or "").strip(), str(last or "").strip()) if part)


def _expect(game_id: int, expect: int | str | None, source: str, what: str = "box score") -> None:
    if expect is None:
        return
    wanted = _game_id(expect, "expect_game_id")
    if wanted != game_id:
        raise FeedError(f"{source}: {what} of game {game_id:010d}, expected game {wanted:010d}")


def _game_id(value: object, source: str) -> int:
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text.isdigit():
        raise FeedError(f"{source}: bad game id {value!r}")
    return int(text)


def _int(value: object, source: str, what: str) -> int:
    result = _optional_int(value, source, what)
    if result is None:
        raise FeedError(f"{source}: {what} is missing")
    return result


def _optional_int(value: object, source: str, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FeedError(f"{source}: {what} is {value!r}, not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise FeedError(f"{source}: {what} is {value!r}, not a whole number")


def _count(value: object, source: str, what: str) -> int:
    result = _int(value, source, what)
    if result < 0:
        raise FeedError(f"{source}: {what} is negative ({result})")
    return result


def _date(value: object, source: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise FeedError(f"{source}: bad game date {value!r}") from exc


def _instant(value: object, source: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        instant = dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise FeedError(f"{source}: bad time {value!r}") from exc
    if instant.tzinfo is None:
        raise FeedError(f"{source}: time {value!r} has no offset")
    return instant.astimezone(dt.UTC)
