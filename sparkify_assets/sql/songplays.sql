-- songplays: one row per NextSong event of the partition's log files.
-- songplay_id hashes the event's identity (ts, user, session, item), so the same event gets the
-- same id on every run and every backend. The song is the catalog song with the event's title and
-- artist name; among several, the closest duration to the played length, then the smallest song_id.
-- The choice depends only on (title, artist, length), so it is made once per distinct triple and
-- joined back: ranking every play instead cost 2.7x more at 10M events (benchmarks/README.md).
-- A NULL length is matched through length_missing, since NULL = NULL never joins.
-- {partition_filter} is a condition on e.source_date filled in by the asset.
WITH plays AS (
    SELECT
        md5(
            CAST(e.ts AS VARCHAR) || '|' || COALESCE(e.user_id, '') || '|'
            || CAST(e.session_id AS VARCHAR) || '|' || COALESCE(CAST(e.item_in_session AS VARCHAR), '')
        ) AS songplay_id,
        e.ts, e.user_id, e.level, e.session_id, e.location, e.user_agent, e.song, e.artist, e.length,
        e.source_date
    FROM staging_events e
    WHERE e.page = 'NextSong' AND {partition_filter}
),
played AS (
    SELECT DISTINCT p.song, p.artist, p.length FROM plays p
),
candidates AS (
    SELECT
        d.song, d.artist, COALESCE(d.length, 0) AS length_key, d.length IS NULL AS length_missing,
        s.song_id, s.artist_id,
        ROW_NUMBER() OVER (
            PARTITION BY d.song, d.artist, d.length
            ORDER BY ABS(s.duration - d.length) ASC NULLS LAST, s.song_id ASC
        ) AS preference
    FROM played d
    JOIN staging_songs s ON s.title = d.song AND s.artist_name = d.artist
)
SELECT
    p.songplay_id,
    epoch_ms(p.ts) AS start_time,
    p.user_id,
    p.level,
    c.song_id,
    c.artist_id,
    p.session_id,
    p.location,
    p.user_agent,
    p.source_date
FROM plays p
LEFT JOIN candidates c
    ON c.preference = 1 AND c.song = p.song AND c.artist = p.artist
    AND c.length_key = COALESCE(p.length, 0) AND c.length_missing = (p.length IS NULL)
