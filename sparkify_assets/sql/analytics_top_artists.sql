-- analytics_top_artists: the 10 most played artists, by the artist name of the NextSong events
-- (what listeners played; most plays match no catalog artist_id).
-- Ties: more distinct listeners first, then the artist name in the warehouse's string order.
SELECT artist_rank, artist_name, plays, listeners, songs
FROM (
    SELECT
        CAST(ROW_NUMBER() OVER (ORDER BY plays DESC, listeners DESC, artist_name) AS INTEGER) AS artist_rank,
        artist_name, plays, listeners, songs
    FROM (
        SELECT
            artist AS artist_name,
            COUNT(*) AS plays,
            COUNT(DISTINCT user_id) AS listeners,
            COUNT(DISTINCT song) AS songs
        FROM staging_events
        WHERE page = 'NextSong'
        GROUP BY artist
    ) per_artist
) ranked
WHERE artist_rank <= 10
