-- Purpose: a faster one-cell answer: nba.subject_stats_as_of with its season-type check inline, career scope as two plain index probes, season scope as one statement, one look-up of the game in progress.
-- Requires: V0002 (nba.subject_stats_as_of, nba.season_types, nba.subject_game_as_of, nba.stat_lines, nba.event_credits), V0005 (the inlinable wrappers that call it).
-- Lock/downtime: replaces one function body (same signature, grants, results and errors); no table is touched, callers see the old or the new body.

-- Measured against V0002's body on the full history (bench/RESULTS.md): the usual question, career or season scope
-- of one season type, is a few index probes, and what else a call cost was PL/pgSQL's: a call of nba.season_types
-- (a function with its own SET clause), an aggregate over a one-row subquery, a cursor loop over the games in
-- progress. The same answers and errors, in the same order: a property test compares every scope and season type
-- with the brute-force reference.

create or replace function nba.subject_stats_as_of(
    p_kind "char", p_subject_id bigint, p_as_of timestamptz, p_scope text, p_season_type text
) returns nba.stat_line
language plpgsql stable parallel safe
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    -- (nba.season_types, inline: a call of it costs more than the rest of a usual answer's checks)
    v_types "char"[] := case p_season_type when 'regular' then '{r}'::"char"[] when 'playoffs' then '{p}'::"char"[]
                        when 'all' then '{r,p}'::"char"[] else nba.season_types(p_season_type) end;
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
        select g.season, s.starts_at into v_season, v_since
        from nba.games g join nba.seasons s on s.season = g.season
        where g.tipoff_at <= p_as_of
        order by g.tipoff_at desc
        limit 1;
        if v_season is null then
            return row(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)::nba.stat_line;
        end if;
    end if;

    -- Games finished by p_as_of: the running totals of the latest one, less (season scope) those of the latest
    -- finished before the season began; and the game in progress, if any (at most one: a subject is never in
    -- two games at once). Career scope of one season type, the usual question: two index probes.
    if cardinality(v_types) = 1 and v_season is null then
        select s.cum_games, s.cum_points, s.cum_fgm, s.cum_fga, s.cum_fg3m, s.cum_fg3a, s.cum_ftm, s.cum_fta,
               s.cum_oreb, s.cum_dreb, s.cum_rebounds, s.cum_assists, s.cum_steals, s.cum_blocks, s.cum_turnovers,
               s.cum_fouls
        into v_result
        from nba.stat_lines s
        where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = v_types[1]
          and s.last_event_at <= p_as_of
        order by s.last_event_at desc, s.game_id desc
        limit 1;
        if not found then
            v_result := row(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        end if;
        select s.game_id into v_game from nba.stat_lines s
        where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = v_types[1]
          and s.last_event_at > p_as_of and s.last_event_at <= p_as_of + nba.max_game_span()
          and s.tipoff_at <= p_as_of
        limit 1;
    elsif cardinality(v_types) = 1 then
        -- season scope of one season type: the three probes in one statement
        select coalesce(f.cum_games, 0) - coalesce(b.cum_games, 0),
               coalesce(f.cum_points, 0) - coalesce(b.cum_points, 0),
               coalesce(f.cum_fgm, 0) - coalesce(b.cum_fgm, 0),
               coalesce(f.cum_fga, 0) - coalesce(b.cum_fga, 0),
               coalesce(f.cum_fg3m, 0) - coalesce(b.cum_fg3m, 0),
               coalesce(f.cum_fg3a, 0) - coalesce(b.cum_fg3a, 0),
               coalesce(f.cum_ftm, 0) - coalesce(b.cum_ftm, 0),
               coalesce(f.cum_fta, 0) - coalesce(b.cum_fta, 0),
               coalesce(f.cum_oreb, 0) - coalesce(b.cum_oreb, 0),
               coalesce(f.cum_dreb, 0) - coalesce(b.cum_dreb, 0),
               coalesce(f.cum_rebounds, 0) - coalesce(b.cum_rebounds, 0),
               coalesce(f.cum_assists, 0) - coalesce(b.cum_assists, 0),
               coalesce(f.cum_steals, 0) - coalesce(b.cum_steals, 0),
               coalesce(f.cum_blocks, 0) - coalesce(b.cum_blocks, 0),
               coalesce(f.cum_turnovers, 0) - coalesce(b.cum_turnovers, 0),
               coalesce(f.cum_fouls, 0) - coalesce(b.cum_fouls, 0),
               (select g.game_id from nba.stat_lines g
                where g.subject_kind = p_kind and g.subject_id = p_subject_id and g.season_type = v_types[1]
                  and g.last_event_at > p_as_of and g.last_event_at <= p_as_of + nba.max_game_span()
                  and g.tipoff_at <= p_as_of and (v_season is null or g.season = v_season)
                limit 1)
        into v_result.games_played, v_result.points, v_result.fgm, v_result.fga, v_result.fg3m, v_result.fg3a,
             v_result.ftm, v_result.fta, v_result.oreb, v_result.dreb, v_result.rebounds, v_result.assists,
             v_result.steals, v_result.blocks, v_result.turnovers, v_result.fouls, v_game
        from (select) one
        left join lateral (
            select s.* from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = v_types[1]
              and s.last_event_at <= p_as_of
            order by s.last_event_at desc, s.game_id desc
            limit 1) f on true
        left join lateral (
            select s.* from nba.stat_lines s
            where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = v_types[1]
              and s.last_event_at < v_since
            order by s.last_event_at desc, s.game_id desc
            limit 1) b on true;
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

        select s.game_id into v_game from nba.stat_lines s
        where s.subject_kind = p_kind and s.subject_id = p_subject_id and s.season_type = any (v_types)
          and s.last_event_at > p_as_of and s.last_event_at <= p_as_of + nba.max_game_span()
          and s.tipoff_at <= p_as_of and (v_season is null or s.season = v_season)
        limit 1;
    end if;

    -- ... plus the events up to p_as_of of the game in progress.
    if v_game is not null then
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
    end if;
    return v_result;
end;
$$;
comment on function nba.subject_stats_as_of("char", bigint, timestamptz, text, text) is
    'Cumulative stat line of a player (p) or team (t) counting every event with wall_clock_time <= p_as_of.';
