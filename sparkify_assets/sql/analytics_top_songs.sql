-- analytics_top_songs: the 10 most played songs, as listeners played them.
-- A song is the (title, artist name) pair of the NextSong events, not the catalog match: on the
-- sample only 1 play of 6,820 matches the catalog, so ranking catalog songs would say nothing.
-- Ties: more distinct listeners first, then title, then artist name in the warehouse's string
-- order (byte order on DuckDB, Redshift and PostgreSQL databases with the C collation).
-- Distinct listeners are counted only for the contenders, the songs with at least the
-- 10th-highest play count (any other has ten songs ahead of it), as for analytics_top_artists:
-- counting them for every song was most of a daily run's time (benchmarks/README.md). A NULL
-- title or artist is a value of its own, as in GROUP BY. The contenders filter the events by
-- EXISTS, not a join: PostgreSQL cannot estimate `plays >= cutoff` (it guesses a third of the
-- songs, not ~10) and merge-joined on a disk sort; a semi-join hashes the few contenders.
WITH song_plays AS (
    SELECT song, artist, COUNT(*) AS plays
    FROM staging_events
    WHERE page = 'NextSong'
    GROUP BY song, artist
),
cutoff AS (
    SELECT MIN(plays) AS plays
    FROM (SELECT plays, ROW_NUMBER() OVER (ORDER BY plays DESC) AS place FROM song_plays) ordered
    WHERE place <= 10
),
contenders AS (
    SELECT s.song, s.artist FROM song_plays s JOIN cutoff c ON s.plays >= c.plays
),
per_song AS (
    SELECT e.song AS title, e.artist AS artist_name, COUNT(*) AS plays, COUNT(DISTINCT e.user_id) AS listeners
    FROM staging_events e
    WHERE e.page = 'NextSong' AND EXISTS (
        SELECT 1 FROM contenders k
        WHERE COALESCE(e.song, '') = COALESCE(k.song, '') AND (e.song IS NULL) = (k.song IS NULL)
            AND COALESCE(e.artist, '') = COALESCE(k.artist, '') AND (e.artist IS NULL) = (k.artist IS NULL)
    )
    GROUP BY e.song, e.artist
)
SELECT song_rank, title, artist_name, plays, listeners
FROM (
    SELECT
        CAST(ROW_NUMBER() OVER (ORDER BY plays DESC, listeners DESC, title, artist_name) AS INTEGER) AS song_rank,
        title, artist_name, plays, listeners
    FROM per_song
) ranked
WHERE song_rank <= 10
