-- Purpose: schema nba: teams, players, games, play-by-play events, per-game stat lines with running totals, seasons.
-- Requires: PostgreSQL 15 or later; a database without a schema named nba.
-- Lock/downtime: creates new objects only; nothing existing is locked or rewritten.

create schema nba;
comment on schema nba is
    'NBA play-by-play and the derived per-game stat lines that answer cumulative stats as of any moment.';

create table nba.teams (
    team_id bigint primary key,
    abbreviation text not null check (abbreviation <> ''),
    name text not null check (name <> '')
);
comment on table nba.teams is 'Franchises, keyed by the NBA team id (e.g. 1610612747 = LAL).';

create table nba.players (
    player_id bigint primary key,
    full_name text not null check (full_name <> '')
);
comment on table nba.players is 'Players, keyed by the NBA person id (e.g. 977 = Kobe Bryant).';

create table nba.games (
    game_id bigint primary key,
    season text not null check (season ~ '^[0-9]{4}-[0-9]{2}$'),
    season_type text not null check (season_type in ('regular', 'playoffs')),
    home_team_id bigint not null references nba.teams,
    away_team_id bigint not null references nba.teams,
    tipoff_at timestamptz not null,
    check (home_team_id <> away_team_id)
);
comment on table nba.games is 'One row per game; tipoff_at is the scheduled tip-off instant.';
create index games_tipoff_at_idx on nba.games (tipoff_at) include (season);
-- A team's latest game at a moment, home or away (game scope of team_stats_as_of).
create index games_home_team_idx on nba.games (home_team_id, tipoff_at);
create index games_away_team_idx on nba.games (away_team_id, tipoff_at);

-- No foreign keys here: checking 16-18M rows one by one would dominate load
-- time. The loader (the only writer) validates every reference first.
create table nba.play_by_play (
    game_id bigint not null,
    event_num integer not null check (event_num > 0),
    period smallint not null check (period between 1 and 20),
    clock text not null check (clock ~ '^[0-9]{1,2}:[0-5][0-9](\.[0-9]{1,3})?$'),
    wall_clock_time timestamptz not null,
    event_type text not null check (event_type in (
        'fg_made', 'fg_missed', 'ft_made', 'ft_missed', 'rebound_off', 'rebound_def', 'turnover', 'foul',
        'substitution', 'timeout', 'jump_ball', 'period_start', 'period_end', 'violation')),
    team_id bigint,
    player_id bigint,
    secondary_player_id bigint,
    points smallint not null,
    is_three boolean not null,
    primary key (game_id, event_num),
    constraint points_follow_event_type check (
        points = case event_type
            when 'fg_made' then case when is_three then 3 else 2 end
            when 'ft_made' then 1
            else 0 end),
    constraint three_only_on_field_goals check (not is_three or event_type in ('fg_made', 'fg_missed')),
    constraint secondary_only_where_defined check (
        secondary_player_id is null or event_type in ('fg_made', 'fg_missed', 'turnover', 'substitution'))
);
comment on table nba.play_by_play is
    'Every event of every game; wall_clock_time has millisecond precision (see README: how it is derived).';
comment on column nba.play_by_play.clock is 'Game clock remaining in the period, MM:SS or MM:SS.f.';
comment on column nba.play_by_play.secondary_player_id is
    'Assister on fg_made, blocker on fg_missed, stealer on turnover, player leaving on substitution.';

-- What each event credits to whom: one row per (event, player or team credited).
-- This view is the single definition of the stat rules; stat lines and the
-- in-progress part of an as-of answer are both computed from it.
create view nba.event_credits as
select e.game_id, e.event_num, e.wall_clock_time, 'p'::"char" as subject_kind, e.player_id as subject_id,
       e.points::int as points,
       (e.event_type = 'fg_made')::int as fgm,
       (e.event_type in ('fg_made', 'fg_missed'))::int as fga,
       (e.event_type = 'fg_made' and e.is_three)::int as fg3m,
       e.is_three::int as fg3a,
       (e.event_type = 'ft_made')::int as ftm,
       (e.event_type in ('ft_made', 'ft_missed'))::int as fta,
       (e.event_type = 'rebound_off')::int as oreb,
       (e.event_type = 'rebound_def')::int as dreb,
       (e.event_type in ('rebound_off', 'rebound_def'))::int as rebounds,
       0 as assists, 0 as steals, 0 as blocks,
       (e.event_type = 'turnover')::int as turnovers,
       (e.event_type = 'foul')::int as fouls
from nba.play_by_play e
where e.player_id is not null
union all
select e.game_id, e.event_num, e.wall_clock_time, 'p'::"char", e.secondary_player_id,
       0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
       (e.event_type = 'fg_made')::int,
       (e.event_type = 'turnover')::int,
       (e.event_type = 'fg_missed')::int,
       0, 0
from nba.play_by_play e
where e.secondary_player_id is not null
union all
-- A team is credited with its own events (team rebounds and turnovers included) ...
select e.game_id, e.event_num, e.wall_clock_time, 't'::"char", e.team_id,
       e.points::int,
       (e.event_type = 'fg_made')::int,
       (e.event_type in ('fg_made', 'fg_missed'))::int,
       (e.event_type = 'fg_made' and e.is_three)::int,
       e.is_three::int,
       (e.event_type = 'ft_made')::int,
       (e.event_type in ('ft_made', 'ft_missed'))::int,
       (e.event_type = 'rebound_off')::int,
       (e.event_type = 'rebound_def')::int,
       (e.event_type in ('rebound_off', 'rebound_def'))::int,
       (e.event_type = 'fg_made' and e.secondary_player_id is not null)::int,
       0, 0,
       (e.event_type = 'turnover')::int,
       (e.event_type = 'foul')::int
from nba.play_by_play e
where e.team_id is not null
union all
-- ... and with the blocks and steals its players make on the other team's events.
select e.game_id, e.event_num, e.wall_clock_time, 't'::"char",
       case when e.team_id = g.home_team_id then g.away_team_id else g.home_team_id end,
       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
       (e.event_type = 'turnover')::int,
       (e.event_type = 'fg_missed')::int,
       0, 0
from nba.play_by_play e
join nba.games g using (game_id)
where e.secondary_player_id is not null and e.event_type in ('fg_missed', 'turnover') and e.team_id is not null;
comment on view nba.event_credits is
    'Stat credits per event: subject_kind p (player) or t (team), subject_id the player or team credited.';

-- Running totals per game of players (kind p) and teams (kind t): after each
-- of its games, a subject's totals over its games of that season type so far,
-- ordered by (last_event_at, game_id). An as-of answer is then one index probe
-- for the games finished by that moment plus a sum over the events of the one
-- game in progress, instead of a sum over a whole career. Box lines are the
-- difference between consecutive rows, which keeps this table small.
-- Columns are ordered widest first so that rows pack without padding.
create table nba.stat_lines (
    subject_id bigint not null,
    last_event_at timestamptz not null,
    game_id bigint not null,
    tipoff_at timestamptz not null,
    cum_games integer not null, cum_points integer not null, cum_fgm integer not null, cum_fga integer not null,
    cum_fg3m integer not null, cum_fg3a integer not null, cum_ftm integer not null, cum_fta integer not null,
    cum_oreb integer not null, cum_dreb integer not null, cum_rebounds integer not null,
    cum_assists integer not null, cum_steals integer not null, cum_blocks integer not null,
    cum_turnovers integer not null, cum_fouls integer not null,
    subject_kind "char" not null check (subject_kind in ('p', 't')),
    season_type "char" not null check (season_type in ('r', 'p')),
    season text not null,
    primary key (subject_kind, subject_id, season_type, last_event_at, game_id)
);
comment on table nba.stat_lines is
    'One row per game of each player (p) and team (t): running totals (cum_*) over the subject''s games of the '
    'same season type (r regular, p playoffs) ordered by (last_event_at, game_id), this game included; '
    'last_event_at is the subject''s last event in the game. Maintained by the loader.';

-- Box lines: the step from each row's running totals to the previous row's.
create view nba.box_lines as
select subject_kind, subject_id, game_id, season,
       case season_type when 'r' then 'regular' else 'playoffs' end as season_type, tipoff_at, last_event_at,
       cum_points - coalesce(lag(cum_points) over w, 0) as points,
       cum_fgm - coalesce(lag(cum_fgm) over w, 0) as fgm, cum_fga - coalesce(lag(cum_fga) over w, 0) as fga,
       cum_fg3m - coalesce(lag(cum_fg3m) over w, 0) as fg3m, cum_fg3a - coalesce(lag(cum_fg3a) over w, 0) as fg3a,
       cum_ftm - coalesce(lag(cum_ftm) over w, 0) as ftm, cum_fta - coalesce(lag(cum_fta) over w, 0) as fta,
       cum_oreb - coalesce(lag(cum_oreb) over w, 0) as oreb, cum_dreb - coalesce(lag(cum_dreb) over w, 0) as dreb,
       cum_rebounds - coalesce(lag(cum_rebounds) over w, 0) as rebounds,
       cum_assists - coalesce(lag(cum_assists) over w, 0) as assists,
       cum_steals - coalesce(lag(cum_steals) over w, 0) as steals,
       cum_blocks - coalesce(lag(cum_blocks) over w, 0) as blocks,
       cum_turnovers - coalesce(lag(cum_turnovers) over w, 0) as turnovers,
       cum_fouls - coalesce(lag(cum_fouls) over w, 0) as fouls
from nba.stat_lines
window w as (partition by subject_kind, subject_id, season_type order by last_event_at, game_id);
comment on view nba.box_lines is 'Per-game box line of every player (p) and team (t), from nba.stat_lines.';

create view nba.player_stats as
select subject_id as player_id, game_id, season, season_type, tipoff_at, last_event_at,
       points, fgm, fga, fg3m, fg3a, ftm, fta, oreb, dreb, rebounds, assists, steals, blocks, turnovers, fouls
from nba.box_lines where subject_kind = 'p';
comment on view nba.player_stats is 'Per-game box line of every player (derived from nba.play_by_play).';

create view nba.team_stats as
select subject_id as team_id, game_id, season, season_type, tipoff_at, last_event_at,
       points, fgm, fga, fg3m, fg3a, ftm, fta, oreb, dreb, rebounds, assists, steals, blocks, turnovers, fouls
from nba.box_lines where subject_kind = 't';
comment on view nba.team_stats is
    'Per-game box line of every team: its own events plus the blocks and steals of its players.';

create table nba.seasons (
    season text primary key,
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    check (starts_at <= ends_at)
);
comment on table nba.seasons is
    'Time span of each season (first tip-off to last event); seasons never overlap, which the loader checks.';
