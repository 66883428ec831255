-- artists: one row per artist_id. The catalog can give one artist several names and places, so
-- the row kept is the song row with the most known values among name, location, latitude and
-- longitude (an empty name or location is unknown), then the smallest song_id, then the smallest
-- name, location, latitude and longitude (unknown last). Only values decide, never the file a row
-- came from, so the choice does not depend on file order or file names, and known values win over
-- NULL. An empty location is stored as NULL.
SELECT artist_id, name, location, latitude, longitude
FROM (
    SELECT
        artist_id,
        artist_name AS name,
        NULLIF(artist_location, '') AS location,
        artist_latitude AS latitude,
        artist_longitude AS longitude,
        ROW_NUMBER() OVER (
            PARTITION BY artist_id
            ORDER BY
                (CASE WHEN NULLIF(artist_name, '') IS NULL THEN 0 ELSE 1 END
                 + CASE WHEN NULLIF(artist_location, '') IS NULL THEN 0 ELSE 1 END
                 + CASE WHEN artist_latitude IS NULL THEN 0 ELSE 1 END
                 + CASE WHEN artist_longitude IS NULL THEN 0 ELSE 1 END) DESC,
                song_id ASC,
                NULLIF(artist_name, '') ASC NULLS LAST,
                NULLIF(artist_location, '') ASC NULLS LAST,
                artist_latitude ASC NULLS LAST,
                artist_longitude ASC NULLS LAST
        ) AS pick
    FROM staging_songs
    WHERE artist_id IS NOT NULL AND artist_id <> ''
) a
WHERE pick = 1
