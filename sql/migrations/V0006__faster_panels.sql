-- Purpose: faster panels: nba.subject_stats_panel rebuilt on a counting walk with int sums and a per-game step for games in progress; nba.panel_subjects (the NULL list, for clients too).
-- Requires: V0005 (nba.subject_stats_panel and its wrappers, whose signatures and results stay), V0002 (nba.season_types, nba.max_game_span), V0004 (nba.event_credits).
-- Lock/downtime: creates functions and replaces the body of nba.subject_stats_panel (same signature, grants and results); no table is touched, callers see the old or the new body.

-- Who a NULL subject list stands for, one place for the panel functions and for clients that count cells first.
-- These helpers run with their caller's rights and are inlined into the query of the function that calls them,
-- which pins search_path; their function names are schema-qualified all the same.
-- Inlinable: no SET clause, so a panel's query plans it with its own.
create function nba.panel_subjects(
    p_kind "char", p_moments timestamptz[], p_scope text, p_season_type text
) returns table (subject_id bigint)
language sql stable parallel safe
as $$
    select distinct s.subject_id
    from nba.stat_lines s
    where s.subject_kind = p_kind
      and s.tipoff_at <= (select pg_catalog.max(m.moment) from pg_catalog.unnest(p_moments) m(moment))
      and (p_scope = 'game' or s.season_type = any (nba.season_types(p_season_type)))
      and (p_scope <> 'season' or s.season in (
          -- the seasons in progress at the moments: the latest begun by each (seasons never overlap)
          select (select se.season from nba.seasons se where se.starts_at <= m.moment
                  order by se.starts_at desc limit 1)
          from pg_catalog.unnest(p_moments) m(moment)))
$$;
comment on function nba.panel_subjects("char", timestamptz[], text, text) is
    'The subjects (p players, t teams) of a panel asked with a NULL list: every subject with a game of '
    'p_season_type (any in game scope) tipped off by the latest of p_moments; in season scope, in the season in '
    'progress at one of the moments. Unordered.';

-- The events so far of games in progress, for the panels. Step i is subject i in game i at moments[i], counting
-- its events after afters[i] (NULL: from the start): the previous moment of the same subject in the same game.
-- Each game's events are read once, and the steps are added up in time order.
-- Inlinable: no SET clause, as nba.panel_subjects.
create function nba.panel_in_game(
    p_kind "char", p_subject_ids bigint[], p_game_ids bigint[], p_moments timestamptz[], p_afters timestamptz[]
) returns table (
    subject_id bigint, game_id bigint, as_of timestamptz, games_played int, points int, fgm int, fga int, fg3m int,
    fg3a int, ftm int, fta int, oreb int, dreb int, rebounds int, assists int, steals int, blocks int,
    turnovers int, fouls int
)
language sql stable parallel safe
as $$
    with steps as (
        select i.subject_id, i.game_id, i.moment, i.after
        from unnest(p_subject_ids, p_game_ids, p_moments, p_afters) as i(subject_id, game_id, moment, after)
    ),
    sums as (
        select p.subject_id, p.game_id, p.moment, pg_catalog.count(c.game_id)::int as seen,
               coalesce(pg_catalog.sum(c.points), 0)::int as points, coalesce(pg_catalog.sum(c.fgm), 0)::int as fgm,
               coalesce(pg_catalog.sum(c.fga), 0)::int as fga, coalesce(pg_catalog.sum(c.fg3m), 0)::int as fg3m,
               coalesce(pg_catalog.sum(c.fg3a), 0)::int as fg3a, coalesce(pg_catalog.sum(c.ftm), 0)::int as ftm,
               coalesce(pg_catalog.sum(c.fta), 0)::int as fta, coalesce(pg_catalog.sum(c.oreb), 0)::int as oreb,
               coalesce(pg_catalog.sum(c.dreb), 0)::int as dreb,
               coalesce(pg_catalog.sum(c.rebounds), 0)::int as rebounds,
               coalesce(pg_catalog.sum(c.assists), 0)::int as assists,
               coalesce(pg_catalog.sum(c.steals), 0)::int as steals,
               coalesce(pg_catalog.sum(c.blocks), 0)::int as blocks,
               coalesce(pg_catalog.sum(c.turnovers), 0)::int as turnovers,
               coalesce(pg_catalog.sum(c.fouls), 0)::int as fouls
        from steps p
        left join (
            select c.* from nba.event_credits c
            where c.game_id = any (array(select distinct p.game_id from steps p)) and c.subject_kind = p_kind
        ) c on c.game_id = p.game_id and c.subject_id = p.subject_id and c.wall_clock_time <= p.moment
           and (p.after is null or c.wall_clock_time > p.after)
        group by p.subject_id, p.game_id, p.moment
    )
    select s.subject_id, s.game_id, s.moment, (pg_catalog.sum(s.seen) over w > 0)::int,
           (pg_catalog.sum(s.points) over w)::int, (pg_catalog.sum(s.fgm) over w)::int,
           (pg_catalog.sum(s.fga) over w)::int, (pg_catalog.sum(s.fg3m) over w)::int,
           (pg_catalog.sum(s.fg3a) over w)::int, (pg_catalog.sum(s.ftm) over w)::int,
           (pg_catalog.sum(s.fta) over w)::int, (pg_catalog.sum(s.oreb) over w)::int,
           (pg_catalog.sum(s.dreb) over w)::int, (pg_catalog.sum(s.rebounds) over w)::int,
           (pg_catalog.sum(s.assists) over w)::int, (pg_catalog.sum(s.steals) over w)::int,
           (pg_catalog.sum(s.blocks) over w)::int, (pg_catalog.sum(s.turnovers) over w)::int,
           (pg_catalog.sum(s.fouls) over w)::int
    from sums s
    window w as (partition by s.subject_id, s.game_id order by s.moment rows unbounded preceding)
$$;
comment on function nba.panel_in_game("char", bigint[], bigint[], timestamptz[], timestamptz[]) is
    'For the panels: each subject''s stat line so far in a game in progress at each of its moments (the arrays '
    'run in parallel; afters[i] is the previous moment of the same subject and game, or NULL).';

-- Career and season scope, per season type. Each subject's running totals cut the time line into intervals (from
-- a game's last event to the next game's), each holding the totals of the games finished in it; the moments of
-- an interval are found by binary search in the sorted moments (width_bucket) and take its totals, no sort and no
-- per-moment probe. A moment from the next game's tip-off on is inside that game: it adds the events so far.
-- Inlinable: no SET clause, so nba.subject_stats_panel plans it with its own SET clause and arguments.
create function nba.subject_running_panel(
    p_kind "char", p_subject_ids bigint[], p_moments timestamptz[], p_scope text, p_season_type text
) returns table (
    subject_id bigint, season_type "char", as_of timestamptz, games_played int, points int, fgm int, fga int,
    fg3m int, fg3a int, ftm int, fta int, oreb int, dreb int, rebounds int, assists int, steals int, blocks int,
    turnovers int, fouls int
)
language sql stable parallel safe
as $$
    with marks as (
        -- The distinct moments, sorted, and (season scope) the start of the season in progress at each.
        select pg_catalog.array_agg(d.moment order by d.moment) as moments,
               pg_catalog.array_agg(d.season_start order by d.moment) as starts,
               pg_catalog.min(least(d.moment, d.season_start)) as lo, pg_catalog.max(d.moment) as hi
        from (
            select u.moment, case when p_scope = 'season' then (
                       select pg_catalog.max(s.starts_at) from nba.seasons s where s.starts_at <= u.moment) end
                       as season_start
            from (select distinct m.moment from pg_catalog.unnest(p_moments) as m(moment)) u
        ) d
    ),
    subjects as (
        select distinct i.subject_id from pg_catalog.unnest(p_subject_ids) as i(subject_id)
        where i.subject_id is not null
        union
        select e.subject_id from nba.panel_subjects(p_kind, p_moments, p_scope, p_season_type) e
        where p_subject_ids is null
    ),
    types as (
        select t.season_type from pg_catalog.unnest(nba.season_types(p_season_type)) as t(season_type)
    ),
    intervals as (
        -- From each game's last event (-infinity before the first) to the next's (infinity after the last), the
        -- totals so far and the next game. The games: from the last finished before the first moment (or season
        -- start) to those tipped off by the last moment.
        select k.subject_id, t.season_type, v.*
        from subjects k
        cross join types t
        cross join marks
        left join lateral (
            select s.last_event_at, s.tipoff_at, s.game_id, s.cum_games, s.cum_points, s.cum_fgm, s.cum_fga,
                   s.cum_fg3m, s.cum_fg3a, s.cum_ftm, s.cum_fta, s.cum_oreb, s.cum_dreb, s.cum_rebounds, s.cum_assists,
                   s.cum_steals, s.cum_blocks, s.cum_turnovers, s.cum_fouls,
                   pg_catalog.lead(s.last_event_at) over w as next_end,
                   pg_catalog.lead(s.tipoff_at) over w as next_tipoff, pg_catalog.lead(s.game_id) over w as next_game,
                   pg_catalog.row_number() over w = 1 as is_first
            from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = k.subject_id and s.season_type = t.season_type
              and s.last_event_at <= marks.hi + nba.max_game_span() and s.tipoff_at <= marks.hi
              and s.last_event_at >= coalesce((
                  select f.last_event_at from nba.stat_lines f
                  where f.subject_kind = p_kind and f.subject_id = k.subject_id and f.season_type = t.season_type
                    and f.last_event_at < marks.lo
                  order by f.last_event_at desc, f.game_id desc
                  limit 1), '-infinity')
            window w as (order by s.last_event_at, s.game_id)
        ) l on true
        cross join lateral (
            -- after each game, until the next one's end
            select l.last_event_at as since, coalesce(l.next_end, 'infinity') as until, l.next_tipoff,
                   l.next_game, l.cum_games as games, l.cum_points as points, l.cum_fgm as fgm, l.cum_fga as fga,
                   l.cum_fg3m as fg3m, l.cum_fg3a as fg3a, l.cum_ftm as ftm, l.cum_fta as fta, l.cum_oreb as oreb,
                   l.cum_dreb as dreb, l.cum_rebounds as rebounds, l.cum_assists as assists, l.cum_steals as steals,
                   l.cum_blocks as blocks, l.cum_turnovers as turnovers, l.cum_fouls as fouls
            where l.game_id is not null
            union all
            -- before the first (all the time when there is none)
            select '-infinity', coalesce(l.last_event_at, 'infinity'), l.tipoff_at, l.game_id,
                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            where l.is_first or l.game_id is null
        ) v
    ),
    cells as (
        -- The moments of each interval, m[first] to m[last]; from m[busy] on, inside the next game.
        select i.subject_id, i.season_type, i.moment_index, marks.moments[i.moment_index] as moment,
               case when i.moment_index >= i.busy then i.next_game end as game_id,
               case when i.moment_index > i.busy then marks.moments[i.moment_index - 1] end as after,
               marks.starts[i.moment_index] as season_start, i.games, i.points, i.fgm, i.fga, i.fg3m, i.fg3a,
               i.ftm, i.fta, i.oreb, i.dreb, i.rebounds, i.assists, i.steals, i.blocks, i.turnovers, i.fouls
        from marks
        cross join lateral (
            select v.*, pg_catalog.width_bucket(v.next_tipoff - interval '1 microsecond', marks.moments) + 1 as busy,
                   pg_catalog.generate_series(
                       pg_catalog.width_bucket(v.since - interval '1 microsecond', marks.moments) + 1,
                       pg_catalog.width_bucket(v.until - interval '1 microsecond', marks.moments)) as moment_index
            from intervals v
        ) i
    ),
    progress as (
        select c.subject_id, c.game_id, c.moment, c.after from cells c where c.game_id is not null
    ),
    partial as materialized (
        -- (once: the planner would otherwise run it again for each cell it joins)
        select p.*
        from (
            select pg_catalog.array_agg(q.subject_id) as subjects, pg_catalog.array_agg(q.game_id) as games,
                   pg_catalog.array_agg(q.moment) as moments, pg_catalog.array_agg(q.after) as afters
            from progress q
        ) a
        cross join lateral nba.panel_in_game(p_kind, a.subjects, a.games, a.moments, a.afters) p
    ),
    bases as (
        -- Season scope: the totals of each subject's last game finished before a season began.
        select k.subject_id, t.season_type, st.season_start, b.*
        from subjects k
        cross join types t
        cross join (select distinct u.season_start from marks cross join pg_catalog.unnest(marks.starts) u(season_start)
                    where u.season_start is not null) st
        cross join lateral (
            select s.cum_games, s.cum_points, s.cum_fgm, s.cum_fga, s.cum_fg3m, s.cum_fg3a, s.cum_ftm, s.cum_fta,
                   s.cum_oreb, s.cum_dreb, s.cum_rebounds, s.cum_assists, s.cum_steals, s.cum_blocks, s.cum_turnovers,
                   s.cum_fouls
            from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = k.subject_id and s.season_type = t.season_type
              and s.last_event_at < st.season_start
            order by s.last_event_at desc, s.game_id desc
            limit 1
        ) b
    )
    -- A cell: the totals of its interval, less those before its season began (season scope), plus the events
    -- so far of the game it is inside.
    select c.subject_id, c.season_type, c.moment,
           c.games - coalesce(b.cum_games, 0) + coalesce(p.games_played, 0),
           c.points - coalesce(b.cum_points, 0) + coalesce(p.points, 0),
           c.fgm - coalesce(b.cum_fgm, 0) + coalesce(p.fgm, 0),
           c.fga - coalesce(b.cum_fga, 0) + coalesce(p.fga, 0),
           c.fg3m - coalesce(b.cum_fg3m, 0) + coalesce(p.fg3m, 0),
           c.fg3a - coalesce(b.cum_fg3a, 0) + coalesce(p.fg3a, 0),
           c.ftm - coalesce(b.cum_ftm, 0) + coalesce(p.ftm, 0),
           c.fta - coalesce(b.cum_fta, 0) + coalesce(p.fta, 0),
           c.oreb - coalesce(b.cum_oreb, 0) + coalesce(p.oreb, 0),
           c.dreb - coalesce(b.cum_dreb, 0) + coalesce(p.dreb, 0),
           c.rebounds - coalesce(b.cum_rebounds, 0) + coalesce(p.rebounds, 0),
           c.assists - coalesce(b.cum_assists, 0) + coalesce(p.assists, 0),
           c.steals - coalesce(b.cum_steals, 0) + coalesce(p.steals, 0),
           c.blocks - coalesce(b.cum_blocks, 0) + coalesce(p.blocks, 0),
           c.turnovers - coalesce(b.cum_turnovers, 0) + coalesce(p.turnovers, 0),
           c.fouls - coalesce(b.cum_fouls, 0) + coalesce(p.fouls, 0)
    from cells c
    left join bases b
        on b.subject_id = c.subject_id and b.season_type = c.season_type and b.season_start = c.season_start
    left join partial p on p.subject_id = c.subject_id and p.game_id = c.game_id and p.as_of = c.moment
$$;
comment on function nba.subject_running_panel("char", bigint[], timestamptz[], text, text) is
    'Career and season scope cells of nba.subject_stats_panel per season type (unordered, unchecked arguments: '
    'call nba.player_stats_panel or nba.team_stats_panel).';

-- Game scope: each subject's games (a player's by their lines, a team's on the schedule) and the moments in one
-- ordered walk whose running maximum is the latest game tipped off, with its box line; a game in progress at a
-- moment counts its events so far (nba.panel_in_game).
-- Inlinable: no SET clause, as nba.subject_running_panel.
create function nba.subject_game_panel(p_kind "char", p_subject_ids bigint[], p_moments timestamptz[])
returns table (
    subject_id bigint, as_of timestamptz, games_played int, points int, fgm int, fga int, fg3m int, fg3a int,
    ftm int, fta int, oreb int, dreb int, rebounds int, assists int, steals int, blocks int, turnovers int,
    fouls int
)
language sql stable parallel safe
as $$
    with marks as (
        select distinct u.moment from pg_catalog.unnest(p_moments) as u(moment)
    ),
    span as (
        select pg_catalog.min(k.moment) as lo, pg_catalog.max(k.moment) as hi from marks k
    ),
    subjects as (
        select distinct i.subject_id from pg_catalog.unnest(p_subject_ids) as i(subject_id)
        where i.subject_id is not null
        union
        select e.subject_id from nba.panel_subjects(p_kind, p_moments, 'game', 'all') e
        where p_subject_ids is null
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
                   s.cum_points - pg_catalog.lag(s.cum_points, 1, 0) over w as points,
                   s.cum_fgm - pg_catalog.lag(s.cum_fgm, 1, 0) over w as fgm,
                   s.cum_fga - pg_catalog.lag(s.cum_fga, 1, 0) over w as fga,
                   s.cum_fg3m - pg_catalog.lag(s.cum_fg3m, 1, 0) over w as fg3m,
                   s.cum_fg3a - pg_catalog.lag(s.cum_fg3a, 1, 0) over w as fg3a,
                   s.cum_ftm - pg_catalog.lag(s.cum_ftm, 1, 0) over w as ftm,
                   s.cum_fta - pg_catalog.lag(s.cum_fta, 1, 0) over w as fta,
                   s.cum_oreb - pg_catalog.lag(s.cum_oreb, 1, 0) over w as oreb,
                   s.cum_dreb - pg_catalog.lag(s.cum_dreb, 1, 0) over w as dreb,
                   s.cum_rebounds - pg_catalog.lag(s.cum_rebounds, 1, 0) over w as rebounds,
                   s.cum_assists - pg_catalog.lag(s.cum_assists, 1, 0) over w as assists,
                   s.cum_steals - pg_catalog.lag(s.cum_steals, 1, 0) over w as steals,
                   s.cum_blocks - pg_catalog.lag(s.cum_blocks, 1, 0) over w as blocks,
                   s.cum_turnovers - pg_catalog.lag(s.cum_turnovers, 1, 0) over w as turnovers,
                   s.cum_fouls - pg_catalog.lag(s.cum_fouls, 1, 0) over w as fouls
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
        where p_kind = 'p'
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
                  select pg_catalog.max(h.tipoff_at) from nba.games h
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
        where p_kind = 't'
    ),
    latest as (
        -- One pass over each subject's games and the moments, in time order: the running maximum of
        -- [tip-off, game id, ...] (arrays compare element by element) is the latest game tipped off, with
        -- the subject's last event in it (NULL: none) and its box line.
        select e.subject_id, e.moment, pg_catalog.max(e.game) over w as game
        from (
            select g.subject_id, g.tipoff_at as at, 1 as ord, null::timestamptz as moment,
                   array[extract(epoch from g.tipoff_at), g.game_id, extract(epoch from g.last_event_at),
                         g.games, g.points, g.fgm, g.fga, g.fg3m, g.fg3a, g.ftm, g.fta, g.oreb, g.dreb,
                         g.rebounds, g.assists, g.steals, g.blocks, g.turnovers, g.fouls] as game
            from games g
            union all
            select k.subject_id, m.moment, 2, m.moment, null
            from subjects k cross join marks m
        ) e
        window w as (partition by e.subject_id order by e.at, e.ord rows unbounded preceding)
    ),
    cells as (
        -- the latest game tipped off by each moment; in progress when its last event comes after the moment
        select l.subject_id, l.moment, l.game, l.game[3] > extract(epoch from l.moment) as in_progress
        from latest l
        where l.moment is not null
    ),
    progress as (
        select c.subject_id, c.moment, c.game[2]::bigint as game_id,
               pg_catalog.lag(c.moment) over (partition by c.subject_id, c.game[2] order by c.moment) as after
        from cells c
        where c.in_progress
    ),
    partial as (
        select p.*
        from (
            select pg_catalog.array_agg(q.subject_id) as subjects, pg_catalog.array_agg(q.game_id) as games,
                   pg_catalog.array_agg(q.moment) as moments, pg_catalog.array_agg(q.after) as afters
            from progress q
        ) a
        cross join lateral nba.panel_in_game(p_kind, a.subjects, a.games, a.moments, a.afters) p
    )
    select c.subject_id, c.moment,
           case when c.in_progress then p.games_played else coalesce(c.game[4], 0)::int end,
           case when c.in_progress then p.points else coalesce(c.game[5], 0)::int end,
           case when c.in_progress then p.fgm else coalesce(c.game[6], 0)::int end,
           case when c.in_progress then p.fga else coalesce(c.game[7], 0)::int end,
           case when c.in_progress then p.fg3m else coalesce(c.game[8], 0)::int end,
           case when c.in_progress then p.fg3a else coalesce(c.game[9], 0)::int end,
           case when c.in_progress then p.ftm else coalesce(c.game[10], 0)::int end,
           case when c.in_progress then p.fta else coalesce(c.game[11], 0)::int end,
           case when c.in_progress then p.oreb else coalesce(c.game[12], 0)::int end,
           case when c.in_progress then p.dreb else coalesce(c.game[13], 0)::int end,
           case when c.in_progress then p.rebounds else coalesce(c.game[14], 0)::int end,
           case when c.in_progress then p.assists else coalesce(c.game[15], 0)::int end,
           case when c.in_progress then p.steals else coalesce(c.game[16], 0)::int end,
           case when c.in_progress then p.blocks else coalesce(c.game[17], 0)::int end,
           case when c.in_progress then p.turnovers else coalesce(c.game[18], 0)::int end,
           case when c.in_progress then p.fouls else coalesce(c.game[19], 0)::int end
    from cells c
    left join partial p on c.in_progress and p.subject_id = c.subject_id and p.as_of = c.moment
$$;
comment on function nba.subject_game_panel("char", bigint[], timestamptz[]) is
    'Game scope cells of nba.subject_stats_panel (unordered, unchecked arguments: call nba.player_stats_panel '
    'or nba.team_stats_panel).';

-- The panel: the one-cell functions' checks, then the scope's cells, summed over the season types when there
-- are two, in the order of the contract (nba.player_stats_panel).
create or replace function nba.subject_stats_panel(
    p_kind "char", p_subject_ids bigint[], p_moments timestamptz[], p_scope text, p_season_type text
) returns table (
    subject_id bigint, as_of timestamptz, games_played bigint, points bigint, fgm bigint, fga bigint, fg3m bigint,
    fg3a bigint, ftm bigint, fta bigint, oreb bigint, dreb bigint, rebounds bigint, assists bigint, steals bigint,
    blocks bigint, turnovers bigint, fouls bigint
)
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
-- The planner expects about one running-totals row per subject from each index range (there are tens) and one
-- game in progress in all, so it would join the moments to them by merge or nested loop and filter millions of
-- pairs; every equality join here is a hash join, linear in its rows (the LATERAL index scans stay loops).
set enable_mergejoin = off
set enable_nestloop = off
-- A panel is fetched on several connections at once (temporaldb panel --jobs): a Gather of parallel workers inside
-- each call only adds their start-up and contention for the same cores (8% of a season's panel, measured).
set max_parallel_workers_per_gather = 0
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
    if p_scope = 'game' then
        return query
        select c.subject_id, c.as_of, c.games_played::bigint, c.points::bigint, c.fgm::bigint, c.fga::bigint,
               c.fg3m::bigint, c.fg3a::bigint, c.ftm::bigint, c.fta::bigint, c.oreb::bigint, c.dreb::bigint,
               c.rebounds::bigint, c.assists::bigint, c.steals::bigint, c.blocks::bigint, c.turnovers::bigint,
               c.fouls::bigint
        from nba.subject_game_panel(p_kind, p_subject_ids, p_moments) c
        order by c.subject_id, c.as_of;
    elsif cardinality(v_types) = 1 then
        return query
        select c.subject_id, c.as_of, c.games_played::bigint, c.points::bigint, c.fgm::bigint, c.fga::bigint,
               c.fg3m::bigint, c.fg3a::bigint, c.ftm::bigint, c.fta::bigint, c.oreb::bigint, c.dreb::bigint,
               c.rebounds::bigint, c.assists::bigint, c.steals::bigint, c.blocks::bigint, c.turnovers::bigint,
               c.fouls::bigint
        from nba.subject_running_panel(p_kind, p_subject_ids, p_moments, p_scope, p_season_type) c
        order by c.subject_id, c.as_of;
    else
        -- int sums are bigint (numeric would come from summing bigint)
        return query
        select c.subject_id, c.as_of, sum(c.games_played), sum(c.points), sum(c.fgm), sum(c.fga), sum(c.fg3m),
               sum(c.fg3a), sum(c.ftm), sum(c.fta), sum(c.oreb), sum(c.dreb), sum(c.rebounds), sum(c.assists),
               sum(c.steals), sum(c.blocks), sum(c.turnovers), sum(c.fouls)
        from nba.subject_running_panel(p_kind, p_subject_ids, p_moments, p_scope, p_season_type) c
        group by c.subject_id, c.as_of
        order by c.subject_id, c.as_of;
    end if;
end;
$$;
comment on function nba.subject_stats_panel("char", bigint[], timestamptz[], text, text) is
    'Panel of players (p) or teams (t): see nba.player_stats_panel.';
