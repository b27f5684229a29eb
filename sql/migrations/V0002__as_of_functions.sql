-- Purpose: the public API: nba.player_stats_as_of and nba.team_stats_as_of (cumulative stat lines at any moment).
-- Requires: V0001 (nba.stat_lines, nba.event_credits, nba.seasons).
-- Lock/downtime: creates a type and functions only; no table is touched.

create type nba.stat_line as (
    games_played bigint, points bigint, fgm bigint, fga bigint, fg3m bigint, fg3a bigint, ftm bigint, fta bigint,
    oreb bigint, dreb bigint, rebounds bigint, assists bigint, steals bigint, blocks bigint, turnovers bigint,
    fouls bigint
);
comment on type nba.stat_line is 'A cumulative stat line: games played and the totals of every counted event.';

-- Every event of a game lies within this span after tip-off (the loader
-- enforces it), so a game in progress at T tipped off after T minus this span.
create function nba.max_game_span() returns interval
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$ select interval '6 hours' $$;
comment on function nba.max_game_span() is
    'Longest time from tip-off to any event of the game; the loader rejects events beyond it.';

create function nba.season_types(p_season_type text) returns "char"[]
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    case p_season_type
        when 'regular' then return array['r']::"char"[];
        when 'playoffs' then return array['p']::"char"[];
        when 'all' then return array['r', 'p']::"char"[];
        else raise exception 'p_season_type must be one of regular, playoffs, all (got %)', coalesce(quote_literal(p_season_type), 'NULL')
            using errcode = 'invalid_parameter_value';
    end case;
end;
$$;
comment on function nba.season_types(text) is
    'Season-type codes of nba.stat_lines (r, p) covered by a p_season_type argument; rejects other values.';

-- The stat line of one subject (player or team) as of a moment. Written for
-- speed: the usual question (one season type, no game in progress) is one
-- index probe plus one empty index range; plans are generic, so a session
-- plans each statement once instead of on every call.
create function nba.subject_stats_as_of(
    p_kind "char", p_subject_id bigint, p_as_of timestamptz, p_scope text, p_season_type text
) returns nba.stat_line
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_types "char"[] := nba.season_types(p_season_type);
    v_season text;
    v_since timestamptz := '-infinity';
    v_game bigint;
    v_result nba.stat_line;
begin
    if p_scope is null or p_scope not in ('career', 'season', 'game') then
        raise exception 'p_scope must be one of career, season, game (got %)', coalesce(quote_literal(p_scope), 'NULL')
            using errcode = 'invalid_parameter_value';
    end if;
    if p_as_of is null then
        raise exception 'p_as_of must not be null' using errcode = 'null_value_not_allowed';
    end if;
    if p_scope = 'game' then
        return nba.subject_game_as_of(p_kind, p_subject_id, p_as_of);
    end if;
    if p_scope = 'season' then
        select g.season into v_season from nba.games g where g.tipoff_at <= p_as_of order by g.tipoff_at desc limit 1;
        if v_season is null then
            return row(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)::nba.stat_line;
        end if;
        select s.starts_at into v_since from nba.seasons s where s.season = v_season;
    end if;

    -- Games finished by p_as_of: the running totals of the latest one ...
    if cardinality(v_types) = 1 and v_season is null then
        select coalesce(sum(f.cum_games), 0), coalesce(sum(f.cum_points), 0), coalesce(sum(f.cum_fgm), 0),
               coalesce(sum(f.cum_fga), 0), coalesce(sum(f.cum_fg3m), 0), coalesce(sum(f.cum_fg3a), 0),
               coalesce(sum(f.cum_ftm), 0), coalesce(sum(f.cum_fta), 0), coalesce(sum(f.cum_oreb), 0),
               coalesce(sum(f.cum_dreb), 0), coalesce(sum(f.cum_rebounds), 0), coalesce(sum(f.cum_assists), 0),
               coalesce(sum(f.cum_steals), 0), coalesce(sum(f.cum_blocks), 0), coalesce(sum(f.cum_turnovers), 0),
               coalesce(sum(f.cum_fouls), 0)
        into v_result
        from (
            select s.* from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = v_types[1]
              and s.last_event_at <= p_as_of
            order by s.last_event_at desc, s.game_id desc
            limit 1) f;
    else
        -- ... of each season type, less those finished before the season began.
        select coalesce(sum(x.games), 0), coalesce(sum(x.points), 0), coalesce(sum(x.fgm), 0),
               coalesce(sum(x.fga), 0), coalesce(sum(x.fg3m), 0), coalesce(sum(x.fg3a), 0), coalesce(sum(x.ftm), 0),
               coalesce(sum(x.fta), 0), coalesce(sum(x.oreb), 0), coalesce(sum(x.dreb), 0),
               coalesce(sum(x.rebounds), 0), coalesce(sum(x.assists), 0), coalesce(sum(x.steals), 0),
               coalesce(sum(x.blocks), 0), coalesce(sum(x.turnovers), 0), coalesce(sum(x.fouls), 0)
        into v_result
        from (
            select f.cum_games as games, f.cum_points as points, f.cum_fgm as fgm, f.cum_fga as fga,
                   f.cum_fg3m as fg3m, f.cum_fg3a as fg3a, f.cum_ftm as ftm, f.cum_fta as fta, f.cum_oreb as oreb,
                   f.cum_dreb as dreb, f.cum_rebounds as rebounds, f.cum_assists as assists,
                   f.cum_steals as steals, f.cum_blocks as blocks, f.cum_turnovers as turnovers, f.cum_fouls as fouls
            from unnest(v_types) as t(season_type)
            cross join lateral (
                select s.* from nba.stat_lines s
                where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = t.season_type
                  and s.last_event_at <= p_as_of
                order by s.last_event_at desc, s.game_id desc
                limit 1) f
            union all
            select -b.cum_games, -b.cum_points, -b.cum_fgm, -b.cum_fga, -b.cum_fg3m, -b.cum_fg3a, -b.cum_ftm,
                   -b.cum_fta, -b.cum_oreb, -b.cum_dreb, -b.cum_rebounds, -b.cum_assists, -b.cum_steals,
                   -b.cum_blocks, -b.cum_turnovers, -b.cum_fouls
            from unnest(v_types) as t(season_type)
            cross join lateral (
                select s.* from nba.stat_lines s
                where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = t.season_type
                  and s.last_event_at < v_since
                order by s.last_event_at desc, s.game_id desc
                limit 1) b
        ) x;
    end if;

    -- ... plus the events up to p_as_of of a game in progress: tipped off, not
    -- finished, so its last event lies within nba.max_game_span() after p_as_of.
    for v_game in
        select s.game_id from nba.stat_lines s
        where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = any (v_types)
          and s.last_event_at > p_as_of and s.last_event_at <= p_as_of + nba.max_game_span()
          and s.tipoff_at <= p_as_of and (v_season is null or s.season = v_season)
    loop
        select (v_result).games_played + (count(*) > 0)::int, (v_result).points + coalesce(sum(c.points), 0),
               (v_result).fgm + coalesce(sum(c.fgm), 0), (v_result).fga + coalesce(sum(c.fga), 0),
               (v_result).fg3m + coalesce(sum(c.fg3m), 0), (v_result).fg3a + coalesce(sum(c.fg3a), 0),
               (v_result).ftm + coalesce(sum(c.ftm), 0), (v_result).fta + coalesce(sum(c.fta), 0),
               (v_result).oreb + coalesce(sum(c.oreb), 0), (v_result).dreb + coalesce(sum(c.dreb), 0),
               (v_result).rebounds + coalesce(sum(c.rebounds), 0), (v_result).assists + coalesce(sum(c.assists), 0),
               (v_result).steals + coalesce(sum(c.steals), 0), (v_result).blocks + coalesce(sum(c.blocks), 0),
               (v_result).turnovers + coalesce(sum(c.turnovers), 0), (v_result).fouls + coalesce(sum(c.fouls), 0)
        into v_result
        from nba.event_credits c
        where c.game_id = v_game and c.subject_kind = p_kind and c.subject_id = p_subject_id
          and c.wall_clock_time <= p_as_of;
    end loop;
    return v_result;
end;
$$;
comment on function nba.subject_stats_as_of("char", bigint, timestamptz, text, text) is
    'Cumulative stat line of a player (p) or team (t) counting every event with wall_clock_time <= p_as_of.';

create function nba.subject_game_as_of(p_kind "char", p_subject_id bigint, p_as_of timestamptz)
returns nba.stat_line
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_line nba.stat_lines;
    v_result nba.stat_line;
    v_game nba.games;
begin
    if p_kind = 't' then
        -- A team's latest game is on the schedule, whether or not it has an event yet.
        select g.* into v_game from nba.games g
        where (g.home_team_id = p_subject_id or g.away_team_id = p_subject_id) and g.tipoff_at <= p_as_of
        order by g.tipoff_at desc, g.game_id desc
        limit 1;
        select s.* into v_line from nba.stat_lines s
        where s.subject_kind = 't' and s.subject_id = p_subject_id
          and s.season_type = case v_game.season_type when 'regular' then 'r' else 'p' end
          and s.last_event_at >= v_game.tipoff_at and s.last_event_at <= v_game.tipoff_at + nba.max_game_span()
          and s.game_id = v_game.game_id;
        return nba.game_line_as_of(p_kind, p_subject_id, p_as_of, v_line);
    end if;
    -- A player's latest game tipped off by p_as_of is either in progress (its last event
    -- is less than nba.max_game_span() away) or the latest finished game of a
    -- season type: a subject is never in two games at once (the loader checks).
    select c.* into v_line
    from (
        select f.*
        from unnest(array['r', 'p']::"char"[]) as t(season_type)
        cross join lateral (
            select s.* from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = t.season_type
              and s.last_event_at <= p_as_of
            order by s.last_event_at desc, s.game_id desc
            limit 1) f
        union all
        select s.* from nba.stat_lines s
        where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type in ('r', 'p')
          and s.last_event_at > p_as_of and s.last_event_at <= p_as_of + nba.max_game_span()
          and s.tipoff_at <= p_as_of
    ) c
    order by c.tipoff_at desc, c.game_id desc
    limit 1;
    return nba.game_line_as_of(p_kind, p_subject_id, p_as_of, v_line);
end;
$$;
comment on function nba.subject_game_as_of("char", bigint, timestamptz) is
    'Stat line of a subject in its latest game with tipoff_at <= p_as_of, counting events up to p_as_of.';

create function nba.game_line_as_of(p_kind "char", p_subject_id bigint, p_as_of timestamptz, p_line nba.stat_lines)
returns nba.stat_line
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_result nba.stat_line;
begin
    if p_line.game_id is null then
        return row(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)::nba.stat_line;
    end if;
    if p_line.last_event_at <= p_as_of then
        -- Finished: its box line is the step from the previous row's running totals.
        select 1::bigint, p_line.cum_points - coalesce(sum(p.cum_points), 0), p_line.cum_fgm - coalesce(sum(p.cum_fgm), 0),
               p_line.cum_fga - coalesce(sum(p.cum_fga), 0), p_line.cum_fg3m - coalesce(sum(p.cum_fg3m), 0),
               p_line.cum_fg3a - coalesce(sum(p.cum_fg3a), 0), p_line.cum_ftm - coalesce(sum(p.cum_ftm), 0),
               p_line.cum_fta - coalesce(sum(p.cum_fta), 0), p_line.cum_oreb - coalesce(sum(p.cum_oreb), 0),
               p_line.cum_dreb - coalesce(sum(p.cum_dreb), 0), p_line.cum_rebounds - coalesce(sum(p.cum_rebounds), 0),
               p_line.cum_assists - coalesce(sum(p.cum_assists), 0), p_line.cum_steals - coalesce(sum(p.cum_steals), 0),
               p_line.cum_blocks - coalesce(sum(p.cum_blocks), 0),
               p_line.cum_turnovers - coalesce(sum(p.cum_turnovers), 0), p_line.cum_fouls - coalesce(sum(p.cum_fouls), 0)
        into v_result
        from (
            select s.* from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = p_line.season_type
              and (s.last_event_at, s.game_id) < (p_line.last_event_at, p_line.game_id)
            order by s.last_event_at desc, s.game_id desc
            limit 1) p;
        return v_result;
    end if;
    select (count(*) > 0)::int, coalesce(sum(c.points), 0), coalesce(sum(c.fgm), 0), coalesce(sum(c.fga), 0),
           coalesce(sum(c.fg3m), 0), coalesce(sum(c.fg3a), 0), coalesce(sum(c.ftm), 0), coalesce(sum(c.fta), 0),
           coalesce(sum(c.oreb), 0), coalesce(sum(c.dreb), 0), coalesce(sum(c.rebounds), 0),
           coalesce(sum(c.assists), 0), coalesce(sum(c.steals), 0), coalesce(sum(c.blocks), 0),
           coalesce(sum(c.turnovers), 0), coalesce(sum(c.fouls), 0)
    into v_result
    from nba.event_credits c
    where c.game_id = p_line.game_id and c.subject_kind = p_kind and c.subject_id = p_subject_id
      and c.wall_clock_time <= p_as_of;
    return v_result;
end;
$$;
comment on function nba.game_line_as_of("char", bigint, timestamptz, nba.stat_lines) is
    'Stat line up to p_as_of of a subject''s game given by its nba.stat_lines row (zeros when there is none).';

create function nba.player_stats_as_of(
    p_player_id bigint, p_as_of timestamptz, p_scope text default 'career', p_season_type text default 'regular'
) returns nba.stat_line
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    return nba.subject_stats_as_of('p', p_player_id, p_as_of, p_scope, p_season_type);
end;
$$;
comment on function nba.player_stats_as_of(bigint, timestamptz, text, text) is
    'A player''s stat line counting every event with wall_clock_time <= p_as_of. p_scope: career (all games '
    'of p_season_type), season (the season of the latest game league-wide with tipoff_at <= p_as_of) or game '
    '(the player''s latest game with tipoff_at <= p_as_of, any season type). p_season_type: regular, playoffs, all.';

create function nba.team_stats_as_of(
    p_team_id bigint, p_as_of timestamptz, p_scope text default 'season', p_season_type text default 'regular'
) returns nba.stat_line
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    return nba.subject_stats_as_of('t', p_team_id, p_as_of, p_scope, p_season_type);
end;
$$;
comment on function nba.team_stats_as_of(bigint, timestamptz, text, text) is
    'A team''s stat line (its events plus its players'' blocks and steals) counting events with '
    'wall_clock_time <= p_as_of; scopes and season types as in nba.player_stats_as_of.';
