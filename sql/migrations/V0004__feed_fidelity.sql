-- Purpose: feed fidelity on nba.play_by_play (foul_kind, ft_value, source_event_id); `fouls` leaves out technicals.
-- Requires: V0001 (nba.play_by_play with constraint points_follow_event_type, view nba.event_credits).
-- Lock/downtime: ALTER TABLE under ACCESS EXCLUSIVE (migrate runs in one transaction, so NOT VALID + VALIDATE would not shorten it): the columns are metadata-only, the constraints cost one scan (about 1.8 s for 17M events, warm cache); reads and loads wait that long. The view swap is instant.

alter table nba.play_by_play
    add column foul_kind text,
    add column ft_value smallint,
    add column source_event_id text;
comment on column nba.play_by_play.foul_kind is
    'Kind of a foul event (NULL: not given, counted as personal). technical, double_technical, defensive_3_seconds '
    'and delay_technical are not personal fouls: they stay on the player''s events but are not counted in fouls.';
comment on column nba.play_by_play.ft_value is
    'What a free throw is worth, 1 to 3 (NULL: 1); points of an ft_made equal it. Only on ft_made and ft_missed.';
comment on column nba.play_by_play.source_event_id is
    'The feed''s own id of the row(s) the event came from, for tracing; NULL when the input has none.';

-- Same kinds as temporaldb.feeds.model.FOUL_KINDS; the loader checks them first, with a file:line message.
alter table nba.play_by_play
    add constraint foul_kind_only_on_fouls check (
        foul_kind is null or (event_type = 'foul' and foul_kind in (
            'personal', 'shooting', 'offensive', 'loose_ball', 'personal_take', 'transition_take',
            'away_from_play', 'clear_path', 'inbound', 'flagrant_1', 'flagrant_2', 'double_personal',
            'technical', 'double_technical', 'defensive_3_seconds', 'delay_technical'))),
    add constraint ft_value_only_on_free_throws check (
        ft_value is null or (event_type in ('ft_made', 'ft_missed') and ft_value between 1 and 3)),
    drop constraint points_follow_event_type,
    add constraint points_follow_event_type check (
        points = case event_type
            when 'fg_made' then case when is_three then 3 else 2 end
            when 'ft_made' then coalesce(ft_value, 1)
            else 0 end);

-- The single definition of the stat rules, as in V0001 but for fouls: a foul counts unless its kind
-- is not a personal foul (NULL counts: data from before foul kinds were recorded).
create or replace view nba.event_credits as
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
       (e.event_type = 'foul' and (e.foul_kind is null or e.foul_kind not in (
           'technical', 'double_technical', 'defensive_3_seconds', 'delay_technical')))::int as fouls
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
       (e.event_type = 'foul' and (e.foul_kind is null or e.foul_kind not in (
           'technical', 'double_technical', 'defensive_3_seconds', 'delay_technical')))::int
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
    'Stat credits per event: subject_kind p (player) or t (team), subject_id the player or team credited; '
    'fouls counts personal fouls only (not technical, double_technical, defensive_3_seconds, delay_technical).';
