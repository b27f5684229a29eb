-- Purpose: load routines (schema nba_load) so temporal_writer loads data without owning tables or running DDL.
-- Requires: V0001 (nba.play_by_play with primary key play_by_play_pkey, the tables analyzed after a load).
-- Lock/downtime: creates a schema and functions only; no table is touched.

create schema nba_load;
comment on schema nba_load is
    'Routines temporaldb load calls: they run as the table owner (security definer), each doing one guarded job.';

create function nba_load.drop_event_key() returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    -- Taken before the check, so no event can arrive between the check and the drop.
    lock table nba.play_by_play in access exclusive mode;
    if exists (select from nba.play_by_play) then
        raise exception 'nba.play_by_play holds events: its primary key is only dropped for a first load'
            using errcode = 'object_not_in_prerequisite_state';
    end if;
    alter table nba.play_by_play drop constraint if exists play_by_play_pkey;
end
$$;
comment on function nba_load.drop_event_key() is
    'First load only: drops the (game_id, event_num) key of the empty nba.play_by_play so COPY runs 3-4x faster.';

create function nba_load.restore_event_key() returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not exists (
        select from pg_constraint where conrelid = 'nba.play_by_play'::regclass and conname = 'play_by_play_pkey'
    ) then
        alter table nba.play_by_play add constraint play_by_play_pkey primary key (game_id, event_num);
    end if;
end
$$;
comment on function nba_load.restore_event_key() is
    'Rebuilds the (game_id, event_num) key after a first load; raises unique_violation on a duplicate event.';

create function nba_load.analyze_tables(p_with_events boolean) returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    analyze nba.stat_lines, nba.games, nba.seasons, nba.teams, nba.players;
    if p_with_events then
        analyze nba.play_by_play;
    end if;
end
$$;
comment on function nba_load.analyze_tables(boolean) is
    'Refreshes planner statistics after a load (ANALYZE needs the owner); play_by_play only when asked.';

-- Security-definer routines are for the writer group, which the role model grants; nobody else.
revoke execute on function nba_load.drop_event_key(), nba_load.restore_event_key(),
    nba_load.analyze_tables(boolean) from public;
