-- analytics_top_artists: the 10 most played artists, by the artist name of the NextSong events
-- (what listeners played; most plays match no catalog artist_id).
-- Ties: more distinct listeners first, then the artist name in the warehouse's string order.
-- Distinct listeners and songs are counted only for the contenders, the artists with at least the
-- 10th-highest play count (any other has ten artists ahead of it); the NULL artist is a group of
-- its own, as in GROUP BY. The contenders filter the events by EXISTS, not a join: PostgreSQL
-- cannot estimate `plays >= cutoff` and merge-joined on a disk sort; a semi-join hashes them.
WITH artist_plays AS (
    SELECT artist, COUNT(*) AS plays
    FROM staging_events
    WHERE page = 'NextSong'
    GROUP BY artist
),
cutoff AS (
    SELECT MIN(plays) AS plays
    FROM (SELECT plays, ROW_NUMBER() OVER (ORDER BY plays DESC) AS place FROM artist_plays) ordered
    WHERE place <= 10
),
contenders AS (
    SELECT a.artist FROM artist_plays a JOIN cutoff c ON a.plays >= c.plays
),
per_artist AS (
    SELECT
        e.artist AS artist_name,
        COUNT(*) AS plays,
        COUNT(DISTINCT e.user_id) AS listeners,
        COUNT(DISTINCT e.song) AS songs
    FROM staging_events e
    WHERE e.page = 'NextSong' AND EXISTS (
        SELECT 1 FROM contenders k
        WHERE COALESCE(e.artist, '') = COALESCE(k.artist, '') AND (e.artist IS NULL) = (k.artist IS NULL)
    )
    GROUP BY e.artist
)
SELECT artist_rank, artist_name, plays, listeners, songs
FROM (
    SELECT
        CAST(ROW_NUMBER() OVER (ORDER BY plays DESC, listeners DESC, artist_name) AS INTEGER) AS artist_rank,
        artist_name, plays, listeners, songs
    FROM per_artist
) ranked
WHERE artist_rank <= 10
