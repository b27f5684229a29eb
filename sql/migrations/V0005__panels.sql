-- Purpose: panels (nba.player_stats_panel, nba.team_stats_panel: many subjects x many moments in one set-based query), nba.standings_as_of, and inlinable one-cell wrappers.
-- Requires: V0002 (nba.subject_stats_as_of, nba.season_types, nba.max_game_span), V0004 (nba.event_credits as it counts fouls).
-- Lock/downtime: creates functions and replaces the bodies of nba.player_stats_as_of and nba.team_stats_as_of (same signatures, grants and results); no table is touched, callers see the old or the new wrappers.

-- The one-cell API. A call of nba.player_stats_as_of or nba.team_stats_as_of was a PL/pgSQL call (with its own
-- SET clause) wrapped around nba.subject_stats_as_of; as plain SQL the planner inlines the wrapper, so a query
-- calls nba.subject_stats_as_of directly (3 to 10% less time per prepared call, measured). Same arguments,
-- defaults, results and errors (nba.subject_stats_as_of raises them). Such a wrapper has no SET clause
-- (PostgreSQL does not inline a function that has one): its body names one schema-qualified function, so the
-- caller's search_path cannot change what it calls.
-- Inlinable: no SET clause.
create or replace function nba.player_stats_as_of(
    p_player_id bigint, p_as_of timestamptz, p_scope text default 'career', p_season_type text default 'regular'
) returns nba.stat_line
language sql stable parallel safe
as $$ select nba.subject_stats_as_of('p', p_player_id, p_as_of, p_scope, p_season_type) $$;
comment on function nba.player_stats_as_of(bigint, timestamptz, text, text) is
    'A player''s stat line counting every event with wall_clock_time <= p_as_of. p_scope: career (all games '
    'of p_season_type), season (the season of the latest game league-wide with tipoff_at <= p_as_of) or game '
    '(the player''s latest game with tipoff_at <= p_as_of, any season type). p_season_type: regular, playoffs, all.';

-- Inlinable: no SET clause, as nba.player_stats_as_of.
create or replace function nba.team_stats_as_of(
    p_team_id bigint, p_as_of timestamptz, p_scope text default 'season', p_season_type text default 'regular'
) returns nba.stat_line
language sql stable parallel safe
as $$ select nba.subject_stats_as_of('t', p_team_id, p_as_of, p_scope, p_season_type) $$;
comment on function nba.team_stats_as_of(bigint, timestamptz, text, text) is
    'A team''s stat line (its events plus its players'' blocks and steals) counting events with '
    'wall_clock_time <= p_as_of; scopes and season types as in nba.player_stats_as_of.';

-- Panels: the stat lines of many subjects at many moments, equal cell for cell to the one-cell functions,
-- from one pass over each subject's running totals (nba.stat_lines) merged with the sorted moments instead of
-- one index probe per cell; the events of a game are read only for moments that fall inside it.
create function nba.subject_stats_panel(
    p_kind "char", p_subject_ids bigint[], p_moments timestamptz[], p_scope text, p_season_type text
) returns table (
    subject_id bigint, as_of timestamptz, games_played bigint, points bigint, fgm bigint, fga bigint, fg3m bigint,
    fg3a bigint, ftm bigint, fta bigint, oreb bigint, dreb bigint, rebounds bigint, assists bigint, steals bigint,
    blocks bigint, turnovers bigint, fouls bigint
)
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    -- The one-cell functions' checks, in their order.
    v_types "char"[] := nba.season_types(p_season_type);
begin
    if p_scope is null or p_scope not in ('career', 'season', 'game') then
        raise exception 'p_scope must be one of career, season, game (got %)', coalesce(quote_literal(p_scope), 'NULL')
            using errcode = 'invalid_parameter_value';
    end if;
    if array_position(p_moments, null) is not null then
        raise exception 'p_moments must not contain NULL' using errcode = 'null_value_not_allowed';
    end if;
    -- Each cell (subject, moment) is the sum of its rows in `cells` (from the subject's running totals in career
    -- and season scope, its latest game's box line in game scope) plus, when a game of the subject is in
    -- progress at that moment (`progress`), the subject's events of that game so far (`partial`).
    return query
    with marks as (
        -- The distinct moments; in season scope, with the start of the season in progress at each (the latest
        -- season to have begun: seasons never overlap, so this is the season of the latest game tipped off).
        select m.moment,
               case when p_scope = 'season' then (
                   select max(s.starts_at) from nba.seasons s where s.starts_at <= m.moment) end as season_start
        from (select distinct u.moment from unnest(p_moments) as u(moment)) m
    ),
    span as (
        select min(least(k.moment, k.season_start)) as lo, max(k.moment) as hi from marks k
    ),
    subjects as (
        select distinct i.subject_id from unnest(p_subject_ids) as i(subject_id) where i.subject_id is not null
        union
        -- A NULL list: every subject with a game of these season types (any in game scope) tipped off by the
        -- last moment; in season scope, in the season of one of the moments.
        select distinct s.subject_id
        from nba.stat_lines s cross join span
        where p_subject_ids is null and s.subject_kind = p_kind and s.tipoff_at <= span.hi
          and (p_scope = 'game' or s.season_type = any (v_types))
          and (p_scope <> 'season' or s.season in (
              select se.season from nba.seasons se where se.starts_at in (select k.season_start from marks k)))
    ),
    lines as (
        -- Career and season scope: each subject's running totals per season type, from its last game finished
        -- before the first moment (or season start) to its games tipped off by the last moment.
        select k.subject_id, t.season_type, l.last_event_at, l.tipoff_at, l.game_id, l.cum_games, l.cum_points,
               l.cum_fgm, l.cum_fga, l.cum_fg3m, l.cum_fg3a, l.cum_ftm, l.cum_fta, l.cum_oreb, l.cum_dreb,
               l.cum_rebounds, l.cum_assists, l.cum_steals, l.cum_blocks, l.cum_turnovers, l.cum_fouls
        from subjects k
        cross join unnest(v_types) as t(season_type)
        cross join span
        cross join lateral (
            select s.* from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = k.subject_id and s.season_type = t.season_type
              and s.last_event_at <= span.hi + nba.max_game_span() and s.tipoff_at <= span.hi
              and s.last_event_at >= coalesce((
                  select f.last_event_at from nba.stat_lines f
                  where f.subject_kind = p_kind and f.subject_id = k.subject_id and f.season_type = t.season_type
                    and f.last_event_at < span.lo
                  order by f.last_event_at desc, f.game_id desc
                  limit 1), '-infinity')
            offset 0
        ) l
        where p_scope <> 'game'
    ),
    walk as (
        -- One pass over those running totals and the moments, in time order, per subject and season type.
        -- Running totals never decrease, so their running maximum at a moment is the latest game finished by
        -- then; the running maximum of [cum_games, game_id] over tip-offs is the latest game tipped off.
        select e.subject_id, e.moment, e.sign, max(e.started) over w as started,
               max(e.cum_games) over w as games, max(e.cum_points) over w as points,
               max(e.cum_fgm) over w as fgm, max(e.cum_fga) over w as fga, max(e.cum_fg3m) over w as fg3m,
               max(e.cum_fg3a) over w as fg3a, max(e.cum_ftm) over w as ftm, max(e.cum_fta) over w as fta,
               max(e.cum_oreb) over w as oreb, max(e.cum_dreb) over w as dreb,
               max(e.cum_rebounds) over w as rebounds, max(e.cum_assists) over w as assists,
               max(e.cum_steals) over w as steals, max(e.cum_blocks) over w as blocks,
               max(e.cum_turnovers) over w as turnovers, max(e.cum_fouls) over w as fouls
        from (
            -- a game's running totals count from its last event on ...
            select l.subject_id, l.season_type, l.last_event_at as at, 1 as ord, null::timestamptz as moment,
                   null::integer as sign, null::bigint[] as started, l.cum_games, l.cum_points, l.cum_fgm,
                   l.cum_fga, l.cum_fg3m, l.cum_fg3a, l.cum_ftm, l.cum_fta, l.cum_oreb, l.cum_dreb, l.cum_rebounds,
                   l.cum_assists, l.cum_steals, l.cum_blocks, l.cum_turnovers, l.cum_fouls
            from lines l
            union all
            -- ... and it is in progress from its tip-off until then ...
            select l.subject_id, l.season_type, l.tipoff_at, 1, null, null, array[l.cum_games, l.game_id], null,
                   null, null, null, null, null, null, null, null, null, null, null, null, null, null, null
            from lines l
            union all
            -- ... a moment counts what finished or tipped off at that instant ...
            select k.subject_id, t.season_type, m.moment, 2, m.moment, 1, null, null, null, null, null, null, null,
                   null, null, null, null, null, null, null, null, null, null
            from subjects k cross join unnest(v_types) as t(season_type) cross join marks m
            where p_scope <> 'game'
            union all
            -- ... the start of its season (season scope) does not: the totals before it are taken off.
            select k.subject_id, t.season_type, m.season_start, 0, m.moment, -1, null, null, null, null, null, null,
                   null, null, null, null, null, null, null, null, null, null, null
            from subjects k cross join unnest(v_types) as t(season_type) cross join marks m
            where m.season_start is not null
        ) e
        window w as (partition by e.subject_id, e.season_type order by e.at, e.ord rows unbounded preceding)
    ),
    games as (
        -- Game scope. A player's games are those they appear in: per season type, from the second to last one
        -- finished before the first moment (so that the last has its box line) to those tipped off by the last
        -- moment, each with its box line, the step from the previous game's running totals ...
        select k.subject_id, l.tipoff_at, l.game_id, l.last_event_at, l.games, l.points, l.fgm, l.fga, l.fg3m,
               l.fg3a, l.ftm, l.fta, l.oreb, l.dreb, l.rebounds, l.assists, l.steals, l.blocks, l.turnovers, l.fouls
        from subjects k
        cross join unnest(array['r', 'p']::"char"[]) as t(season_type)
        cross join span
        cross join lateral (
            select s.tipoff_at, s.game_id, s.last_event_at, 1 as games,
                   s.cum_points - lag(s.cum_points, 1, 0) over w as points,
                   s.cum_fgm - lag(s.cum_fgm, 1, 0) over w as fgm, s.cum_fga - lag(s.cum_fga, 1, 0) over w as fga,
                   s.cum_fg3m - lag(s.cum_fg3m, 1, 0) over w as fg3m,
                   s.cum_fg3a - lag(s.cum_fg3a, 1, 0) over w as fg3a,
                   s.cum_ftm - lag(s.cum_ftm, 1, 0) over w as ftm, s.cum_fta - lag(s.cum_fta, 1, 0) over w as fta,
                   s.cum_oreb - lag(s.cum_oreb, 1, 0) over w as oreb,
                   s.cum_dreb - lag(s.cum_dreb, 1, 0) over w as dreb,
                   s.cum_rebounds - lag(s.cum_rebounds, 1, 0) over w as rebounds,
                   s.cum_assists - lag(s.cum_assists, 1, 0) over w as assists,
                   s.cum_steals - lag(s.cum_steals, 1, 0) over w as steals,
                   s.cum_blocks - lag(s.cum_blocks, 1, 0) over w as blocks,
                   s.cum_turnovers - lag(s.cum_turnovers, 1, 0) over w as turnovers,
                   s.cum_fouls - lag(s.cum_fouls, 1, 0) over w as fouls
            from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = k.subject_id and s.season_type = t.season_type
              and s.last_event_at <= span.hi + nba.max_game_span() and s.tipoff_at <= span.hi
              and s.last_event_at >= coalesce((
                  select f.last_event_at from nba.stat_lines f
                  where f.subject_kind = p_kind and f.subject_id = k.subject_id and f.season_type = t.season_type
                    and f.last_event_at < span.lo
                  order by f.last_event_at desc, f.game_id desc
                  limit 1 offset 1), '-infinity')
            window w as (order by s.last_event_at, s.game_id)
            offset 0
        ) l
        where p_scope = 'game' and p_kind = 'p'
        union all
        -- ... a team's are on the schedule, from the last one tipped off by the first moment, each with its
        -- line (when the team has events in it) and the box line from the previous running totals.
        select k.subject_id, g.tipoff_at, g.game_id, l.last_event_at, (l.game_id is not null)::int,
               l.cum_points - coalesce(b.cum_points, 0), l.cum_fgm - coalesce(b.cum_fgm, 0),
               l.cum_fga - coalesce(b.cum_fga, 0), l.cum_fg3m - coalesce(b.cum_fg3m, 0),
               l.cum_fg3a - coalesce(b.cum_fg3a, 0), l.cum_ftm - coalesce(b.cum_ftm, 0),
               l.cum_fta - coalesce(b.cum_fta, 0), l.cum_oreb - coalesce(b.cum_oreb, 0),
               l.cum_dreb - coalesce(b.cum_dreb, 0), l.cum_rebounds - coalesce(b.cum_rebounds, 0),
               l.cum_assists - coalesce(b.cum_assists, 0), l.cum_steals - coalesce(b.cum_steals, 0),
               l.cum_blocks - coalesce(b.cum_blocks, 0), l.cum_turnovers - coalesce(b.cum_turnovers, 0),
               l.cum_fouls - coalesce(b.cum_fouls, 0)
        from subjects k
        cross join span
        cross join lateral (
            select g.game_id, g.tipoff_at,
                   case g.season_type when 'regular' then 'r' else 'p' end::"char" as code
            from nba.games g
            where (g.home_team_id = k.subject_id or g.away_team_id = k.subject_id) and g.tipoff_at <= span.hi
              and g.tipoff_at >= coalesce((
                  select max(h.tipoff_at) from nba.games h
                  where (h.home_team_id = k.subject_id or h.away_team_id = k.subject_id)
                    and h.tipoff_at <= span.lo), '-infinity')
            offset 0
        ) g
        left join lateral (
            select s.* from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = k.subject_id and s.season_type = g.code
              and s.last_event_at >= g.tipoff_at and s.last_event_at <= g.tipoff_at + nba.max_game_span()
              and s.game_id = g.game_id
        ) l on true
        left join lateral (
            select s.* from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = k.subject_id and s.season_type = g.code
              and (s.last_event_at, s.game_id) < (l.last_event_at, l.game_id)
            order by s.last_event_at desc, s.game_id desc
            limit 1
        ) b on true
        where p_scope = 'game' and p_kind = 't'
    ),
    latest as (
        -- One pass over each subject's games and the moments, in time order: the running maximum of
        -- [tip-off, game id, ...] (arrays compare element by element) is the latest game tipped off, with
        -- the subject's last event in it (NULL: none) and its box line.
        select e.subject_id, e.moment, max(e.game) over w as game
        from (
            select g.subject_id, g.tipoff_at as at, 1 as ord, null::timestamptz as moment,
                   array[extract(epoch from g.tipoff_at), g.game_id, extract(epoch from g.last_event_at),
                         g.games, g.points, g.fgm, g.fga, g.fg3m, g.fg3a, g.ftm, g.fta, g.oreb, g.dreb,
                         g.rebounds, g.assists, g.steals, g.blocks, g.turnovers, g.fouls] as game
            from games g
            union all
            select k.subject_id, m.moment, 2, m.moment, null
            from subjects k cross join marks m
            where p_scope = 'game'
        ) e
        window w as (partition by e.subject_id order by e.at, e.ord rows unbounded preceding)
    ),
    cells as (
        select w.subject_id, w.moment, w.sign * w.games as games, w.sign * w.points as points,
               w.sign * w.fgm as fgm, w.sign * w.fga as fga, w.sign * w.fg3m as fg3m, w.sign * w.fg3a as fg3a,
               w.sign * w.ftm as ftm, w.sign * w.fta as fta, w.sign * w.oreb as oreb, w.sign * w.dreb as dreb,
               w.sign * w.rebounds as rebounds, w.sign * w.assists as assists, w.sign * w.steals as steals,
               w.sign * w.blocks as blocks, w.sign * w.turnovers as turnovers, w.sign * w.fouls as fouls,
               -- in progress: the latest game tipped off is not the latest finished (not at a season start)
               case when w.sign = 1 and w.started[1] > coalesce(w.games, 0) then w.started[2] end as progress
        from walk w
        where w.moment is not null
        union all
        select l.subject_id, l.moment, l.game[4], l.game[5], l.game[6], l.game[7], l.game[8], l.game[9],
               l.game[10], l.game[11], l.game[12], l.game[13], l.game[14], l.game[15], l.game[16], l.game[17],
               l.game[18], l.game[19], null
        from latest l
        where l.moment is not null and (l.game[3] is null or l.game[3] <= extract(epoch from l.moment))
        union all
        -- in game scope a game in progress counts only its events so far
        select l.subject_id, l.moment, null, null, null, null, null, null, null, null, null, null, null, null,
               null, null, null, null, l.game[2]::bigint
        from latest l
        where l.moment is not null and l.game[3] > extract(epoch from l.moment)
    ),
    progress as (
        select c.subject_id, c.moment, c.progress as game_id from cells c where c.progress is not null
    ),
    partial as (
        -- The events of each game in progress up to each of its moments: one pass over the game's credits.
        select p.subject_id, p.moment, (max(p.seen) > 0)::int as games, max(p.points) as points, max(p.fgm) as fgm,
               max(p.fga) as fga, max(p.fg3m) as fg3m, max(p.fg3a) as fg3a, max(p.ftm) as ftm, max(p.fta) as fta,
               max(p.oreb) as oreb, max(p.dreb) as dreb, max(p.rebounds) as rebounds, max(p.assists) as assists,
               max(p.steals) as steals, max(p.blocks) as blocks, max(p.turnovers) as turnovers,
               max(p.fouls) as fouls
        from (
            select e.subject_id, e.moment, count(e.points) over w as seen, sum(e.points) over w as points,
                   sum(e.fgm) over w as fgm, sum(e.fga) over w as fga, sum(e.fg3m) over w as fg3m,
                   sum(e.fg3a) over w as fg3a, sum(e.ftm) over w as ftm, sum(e.fta) over w as fta,
                   sum(e.oreb) over w as oreb, sum(e.dreb) over w as dreb, sum(e.rebounds) over w as rebounds,
                   sum(e.assists) over w as assists, sum(e.steals) over w as steals, sum(e.blocks) over w as blocks,
                   sum(e.turnovers) over w as turnovers, sum(e.fouls) over w as fouls
            from (
                select c.game_id, c.subject_id, c.wall_clock_time as at, 1 as ord, null::timestamptz as moment,
                       c.points, c.fgm, c.fga, c.fg3m, c.fg3a, c.ftm, c.fta, c.oreb, c.dreb, c.rebounds, c.assists,
                       c.steals, c.blocks, c.turnovers, c.fouls
                from nba.event_credits c
                where c.game_id = any (array(select distinct p.game_id from progress p))
                  and c.subject_id = any (array(select distinct p.subject_id from progress p))
                  and c.subject_kind = p_kind
                union all
                select p.game_id, p.subject_id, p.moment, 2, p.moment, null, null, null, null, null, null, null,
                       null, null, null, null, null, null, null, null
                from progress p
            ) e
            window w as (partition by e.game_id, e.subject_id order by e.at, e.ord rows unbounded preceding)
        ) p
        where p.moment is not null
        group by p.subject_id, p.moment
    )
    select x.subject_id, x.moment, coalesce(sum(x.games), 0)::bigint, coalesce(sum(x.points), 0)::bigint,
           coalesce(sum(x.fgm), 0)::bigint, coalesce(sum(x.fga), 0)::bigint, coalesce(sum(x.fg3m), 0)::bigint,
           coalesce(sum(x.fg3a), 0)::bigint, coalesce(sum(x.ftm), 0)::bigint, coalesce(sum(x.fta), 0)::bigint,
           coalesce(sum(x.oreb), 0)::bigint, coalesce(sum(x.dreb), 0)::bigint, coalesce(sum(x.rebounds), 0)::bigint,
           coalesce(sum(x.assists), 0)::bigint, coalesce(sum(x.steals), 0)::bigint, coalesce(sum(x.blocks), 0)::bigint,
           coalesce(sum(x.turnovers), 0)::bigint, coalesce(sum(x.fouls), 0)::bigint
    from (
        select c.subject_id, c.moment, c.games, c.points, c.fgm, c.fga, c.fg3m, c.fg3a, c.ftm, c.fta, c.oreb,
               c.dreb, c.rebounds, c.assists, c.steals, c.blocks, c.turnovers, c.fouls
        from cells c
        union all
        select p.* from partial p
    ) x
    group by x.subject_id, x.moment
    order by x.subject_id, x.moment;
end;
$$;
comment on function nba.subject_stats_panel("char", bigint[], timestamptz[], text, text) is
    'Panel of players (p) or teams (t): see nba.player_stats_panel.';

-- Inlinable: no SET clause, as nba.player_stats_as_of (the query then calls nba.subject_stats_panel directly).
create function nba.player_stats_panel(
    p_player_ids bigint[], p_moments timestamptz[], p_scope text default 'career', p_season_type text default 'regular'
) returns table (
    player_id bigint, as_of timestamptz, games_played bigint, points bigint, fgm bigint, fga bigint, fg3m bigint,
    fg3a bigint, ftm bigint, fta bigint, oreb bigint, dreb bigint, rebounds bigint, assists bigint, steals bigint,
    blocks bigint, turnovers bigint, fouls bigint
)
language sql stable parallel safe
as $$ select * from nba.subject_stats_panel('p', p_player_ids, p_moments, p_scope, p_season_type) $$;
comment on function nba.player_stats_panel(bigint[], timestamptz[], text, text) is
    'Players'' stat lines at many moments: one row per distinct player id and distinct moment, ordered by '
    'player_id then as_of, each equal to nba.player_stats_as_of(player_id, as_of, p_scope, p_season_type) (same '
    'scopes, season types and errors). Repeated ids or moments give one row; a NULL id in the list is skipped; '
    'an id with no games (or unknown) gets rows of zeros, as from the one-cell function. p_player_ids NULL: '
    'every player with a game of p_season_type (any type in game scope) tipped off at or before the latest '
    'moment, in season scope in the season of one of the moments. p_moments NULL or empty: no rows; a NULL '
    'moment raises null_value_not_allowed.';

-- Inlinable: no SET clause, as nba.player_stats_as_of.
create function nba.team_stats_panel(
    p_team_ids bigint[], p_moments timestamptz[], p_scope text default 'career', p_season_type text default 'regular'
) returns table (
    team_id bigint, as_of timestamptz, games_played bigint, points bigint, fgm bigint, fga bigint, fg3m bigint,
    fg3a bigint, ftm bigint, fta bigint, oreb bigint, dreb bigint, rebounds bigint, assists bigint, steals bigint,
    blocks bigint, turnovers bigint, fouls bigint
)
language sql stable parallel safe
as $$ select * from nba.subject_stats_panel('t', p_team_ids, p_moments, p_scope, p_season_type) $$;
comment on function nba.team_stats_panel(bigint[], timestamptz[], text, text) is
    'Teams'' stat lines at many moments: one row per distinct team id and distinct moment, ordered by team_id '
    'then as_of, each equal to nba.team_stats_as_of(team_id, as_of, p_scope, p_season_type); contract as in '
    'nba.player_stats_panel (note the default scope here is career, as for players, not season).';

-- Standings: wins and losses by a moment, from the points in each team's stat lines.
create function nba.standings_as_of(p_as_of timestamptz, p_season text default null)
returns table (
    season text, team_id bigint, abbreviation text, name text, wins bigint, losses bigint, win_pct numeric,
    games_behind numeric, playoff_wins bigint, playoff_losses bigint
)
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
    v_season text := p_season;
begin
    if p_as_of is null then
        raise exception 'p_as_of must not be null' using errcode = 'null_value_not_allowed';
    end if;
    if p_season !~ '^[0-9]{4}-[0-9]{2}$' then
        raise exception 'p_season must be a season such as 2015-16 (got %)', quote_literal(p_season)
            using errcode = 'invalid_parameter_value';
    end if;
    if v_season is null then
        -- The season in progress: that of the latest game tipped off (as in season scope).
        select g.season into v_season from nba.games g where g.tipoff_at <= p_as_of order by g.tipoff_at desc limit 1;
    end if;
    return query
    with schedule as (
        select g.game_id, g.season_type, g.home_team_id, g.away_team_id, g.tipoff_at
        from nba.games g
        where g.season = v_season
    ),
    sides as (
        -- Each team's points in each game whose last event has happened (every event lies within
        -- nba.max_game_span() of tip-off, so only games tipped off less than that before p_as_of are looked
        -- at): the step in its running total of points at that game (no stat line: 0).
        select g.game_id, g.season_type, x.team_id, coalesce((
                   select l.cum_points - coalesce((
                       select p.cum_points from nba.stat_lines p
                       where p.subject_kind = 't' and p.subject_id = x.team_id and p.season_type = l.season_type
                         and (p.last_event_at, p.game_id) < (l.last_event_at, l.game_id)
                       order by p.last_event_at desc, p.game_id desc
                       limit 1), 0)
                   from nba.stat_lines l
                   where l.subject_kind = 't' and l.subject_id = x.team_id
                     and l.season_type = case g.season_type when 'regular' then 'r' else 'p' end::"char"
                     and l.last_event_at >= g.tipoff_at and l.last_event_at <= g.tipoff_at + nba.max_game_span()
                     and l.game_id = g.game_id), 0) as points
        from schedule g
        cross join lateral (values (g.home_team_id), (g.away_team_id)) as x(team_id)
        where g.tipoff_at <= p_as_of
          and (g.tipoff_at + nba.max_game_span() <= p_as_of or not exists (
              select from nba.play_by_play e where e.game_id = g.game_id and e.wall_clock_time > p_as_of))
    ),
    decided as (
        -- A game is won by the team with more points; equal points (e.g. none yet) decide nothing.
        select d.season_type, d.team_id, d.points > d.opponent_points as won
        from (
            select s.season_type, s.team_id, s.points, sum(s.points) over (partition by s.game_id) - s.points
                   as opponent_points
            from sides s
        ) d
        where d.points <> d.opponent_points
    ),
    records as (
        select t.team_id,
               count(*) filter (where d.season_type = 'regular' and d.won) as wins,
               count(*) filter (where d.season_type = 'regular' and not d.won) as losses,
               count(*) filter (where d.season_type = 'playoffs' and d.won) as playoff_wins,
               count(*) filter (where d.season_type = 'playoffs' and not d.won) as playoff_losses
        from (select g.home_team_id as team_id from schedule g union select g.away_team_id from schedule g) t
        left join decided d on d.team_id = t.team_id
        group by t.team_id
    )
    select v_season, r.team_id, t.abbreviation, t.name, r.wins, r.losses,
           round(r.wins::numeric / nullif(r.wins + r.losses, 0), 3),
           ((max(r.wins - r.losses) over () - (r.wins - r.losses)) / 2.0)::numeric(6, 1),
           r.playoff_wins, r.playoff_losses
    from records r
    join nba.teams t on t.team_id = r.team_id
    order by 8, 7 desc nulls last, r.team_id;
end;
$$;
comment on function nba.standings_as_of(timestamptz, text) is
    'Standings at p_as_of of the season p_season (YYYY-YY; NULL: the season of the latest game tipped off by '
    'p_as_of): one row per team on that season''s schedule, league-wide (the schema has no conferences). A game '
    'counts once its last event is at or before p_as_of; its winner has more points in the stat lines (equal '
    'points, e.g. none, count for neither). wins, losses, win_pct (3 decimals, NULL before a decision) and '
    'games_behind (the leader by wins minus losses: ((W-L of the leader) - (W-L)) / 2) are regular season; '
    'playoff_wins and playoff_losses apart. Ordered by games_behind, then win_pct (best first), then team_id. '
    'No rows for an unknown season or before the first game.';
