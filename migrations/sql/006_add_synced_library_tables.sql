BEGIN;

-- Running upgrade 005 -> 006

CREATE TABLE IF NOT EXISTS plex_libraries (
    server_id TEXT NOT NULL, 
    section_id TEXT NOT NULL, 
    title TEXT NOT NULL, 
    type TEXT NOT NULL, 
    synced_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    deleted_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (server_id, section_id)
);

CREATE TABLE IF NOT EXISTS plex_library_items (
    server_id TEXT NOT NULL, 
    rating_key TEXT NOT NULL, 
    section_id TEXT, 
    guid TEXT, 
    imdb_id TEXT, 
    tmdb_id INTEGER, 
    tvdb_id INTEGER, 
    type TEXT NOT NULL, 
    title TEXT NOT NULL, 
    year INTEGER, 
    parent_rating_key TEXT, 
    grandparent_rating_key TEXT, 
    season_number INTEGER, 
    episode_number INTEGER, 
    added_at TIMESTAMP WITH TIME ZONE, 
    updated_at TIMESTAMP WITH TIME ZONE, 
    last_viewed_at TIMESTAMP WITH TIME ZONE, 
    view_count INTEGER DEFAULT 0 NOT NULL, 
    file_path TEXT, 
    file_size BIGINT, 
    duration_ms BIGINT, 
    synced_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    deleted_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (server_id, rating_key)
);

CREATE INDEX IF NOT EXISTS ix_plex_library_items_tmdb_id ON plex_library_items (tmdb_id);

CREATE INDEX IF NOT EXISTS ix_plex_library_items_tvdb_id ON plex_library_items (tvdb_id);

CREATE INDEX IF NOT EXISTS ix_plex_library_items_imdb_id ON plex_library_items (imdb_id);

CREATE TABLE IF NOT EXISTS tautulli_watch_history (
    row_id BIGINT NOT NULL, 
    reference_id BIGINT, 
    rating_key TEXT NOT NULL, 
    parent_rating_key TEXT, 
    grandparent_rating_key TEXT, 
    guid TEXT, 
    media_type TEXT, 
    user_id BIGINT, 
    user_name TEXT, 
    started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    stopped_at TIMESTAMP WITH TIME ZONE, 
    duration_seconds INTEGER, 
    percent_complete INTEGER, 
    watched BOOLEAN DEFAULT false NOT NULL, 
    synced_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    deleted_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (row_id)
);

CREATE INDEX IF NOT EXISTS ix_tautulli_watch_history_rating_key ON tautulli_watch_history (rating_key);

CREATE INDEX IF NOT EXISTS ix_tautulli_watch_history_started_at ON tautulli_watch_history (started_at);

CREATE TABLE IF NOT EXISTS sonarr_series (
    id INTEGER NOT NULL, 
    tvdb_id INTEGER, 
    tmdb_id INTEGER, 
    imdb_id TEXT, 
    title TEXT NOT NULL, 
    title_slug TEXT, 
    path TEXT, 
    monitored BOOLEAN, 
    status TEXT, 
    added_at TIMESTAMP WITH TIME ZONE, 
    episode_count INTEGER, 
    episode_file_count INTEGER, 
    size_on_disk BIGINT, 
    synced_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    deleted_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id)
);

CREATE INDEX IF NOT EXISTS ix_sonarr_series_tvdb_id ON sonarr_series (tvdb_id);

CREATE TABLE IF NOT EXISTS radarr_movies (
    id INTEGER NOT NULL, 
    tmdb_id INTEGER, 
    imdb_id TEXT, 
    title TEXT NOT NULL, 
    year INTEGER, 
    path TEXT, 
    monitored BOOLEAN, 
    status TEXT, 
    added_at TIMESTAMP WITH TIME ZONE, 
    has_file BOOLEAN DEFAULT false NOT NULL, 
    size_on_disk BIGINT, 
    synced_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    deleted_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id)
);

CREATE INDEX IF NOT EXISTS ix_radarr_movies_tmdb_id ON radarr_movies (tmdb_id);

CREATE TABLE IF NOT EXISTS overseerr_requests (
    id INTEGER NOT NULL, 
    status INTEGER NOT NULL, 
    type TEXT, 
    is_4k BOOLEAN DEFAULT false NOT NULL, 
    media_id INTEGER, 
    tmdb_id INTEGER, 
    tvdb_id INTEGER, 
    rating_key TEXT, 
    requested_by_id INTEGER, 
    requested_by TEXT, 
    created_at TIMESTAMP WITH TIME ZONE, 
    updated_at TIMESTAMP WITH TIME ZONE, 
    synced_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    deleted_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id)
);

CREATE INDEX IF NOT EXISTS ix_overseerr_requests_tmdb_id ON overseerr_requests (tmdb_id);

CREATE TABLE IF NOT EXISTS watch_stats (
    rating_key TEXT NOT NULL, 
    plays INTEGER NOT NULL, 
    complete_plays INTEGER NOT NULL, 
    users INTEGER NOT NULL, 
    last_watched_at TIMESTAMP WITH TIME ZONE, 
    total_watch_seconds BIGINT NOT NULL, 
    computed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (rating_key)
);

CREATE TABLE IF NOT EXISTS media_catalog (
    server_id TEXT NOT NULL, 
    rating_key TEXT NOT NULL, 
    type TEXT NOT NULL, 
    title TEXT NOT NULL, 
    year INTEGER, 
    imdb_id TEXT, 
    tmdb_id INTEGER, 
    tvdb_id INTEGER, 
    sonarr_series_id INTEGER, 
    radarr_movie_id INTEGER, 
    overseerr_request_id INTEGER, 
    requested_by TEXT, 
    plays INTEGER NOT NULL, 
    last_watched_at TIMESTAMP WITH TIME ZONE, 
    total_watch_seconds BIGINT NOT NULL, 
    computed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (server_id, rating_key)
);

UPDATE alembic_version SET version_num='006' WHERE alembic_version.version_num = '005';

COMMIT;

