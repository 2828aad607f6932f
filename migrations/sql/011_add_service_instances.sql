BEGIN;

-- Running upgrade 010 -> 011

ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT 'default';

ALTER TABLE sync_schedule ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT 'default';

ALTER TABLE plex_libraries ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT 'default';

ALTER TABLE plex_library_items ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT 'default';

ALTER TABLE tautulli_watch_history ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT 'default';

ALTER TABLE sonarr_series ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT 'default';

ALTER TABLE radarr_movies ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT 'default';

ALTER TABLE overseerr_requests ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT 'default';

ALTER TABLE watch_stats ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT 'default';

DO $$
        DECLARE
            old name;
        BEGIN
            FOR old IN
                SELECT c.conname FROM pg_constraint AS c
                JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                WHERE c.conrelid = 'sync_schedule'::regclass AND c.contype = 'u'
                    AND cardinality(c.conkey) = 1 AND a.attname = 'service'
            LOOP
                EXECUTE 'ALTER TABLE sync_schedule DROP CONSTRAINT ' || quote_ident(old);
            END LOOP;
            IF NOT EXISTS (SELECT 1 FROM pg_constraint
                           WHERE conrelid = 'sync_schedule'::regclass AND conname = 'uq_sync_schedule_service_instance') THEN
                ALTER TABLE sync_schedule ADD CONSTRAINT uq_sync_schedule_service_instance UNIQUE (service, instance);
            END IF;
        END
        $$;

DO $$
        DECLARE
            pk_name name;
            pk_columns text[];
        BEGIN
            SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord) INTO pk_name, pk_columns
            FROM pg_constraint AS c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = 'plex_libraries'::regclass AND c.contype = 'p'
            GROUP BY c.conname;
            IF pk_columns IS DISTINCT FROM ARRAY['instance', 'server_id', 'section_id'] THEN
                IF pk_name IS NOT NULL THEN
                    EXECUTE 'ALTER TABLE plex_libraries DROP CONSTRAINT ' || quote_ident(pk_name);
                END IF;
                ALTER TABLE plex_libraries ADD CONSTRAINT plex_libraries_pkey PRIMARY KEY (instance, server_id, section_id);
            END IF;
        END
        $$;

DO $$
        DECLARE
            pk_name name;
            pk_columns text[];
        BEGIN
            SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord) INTO pk_name, pk_columns
            FROM pg_constraint AS c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = 'plex_library_items'::regclass AND c.contype = 'p'
            GROUP BY c.conname;
            IF pk_columns IS DISTINCT FROM ARRAY['instance', 'server_id', 'rating_key'] THEN
                IF pk_name IS NOT NULL THEN
                    EXECUTE 'ALTER TABLE plex_library_items DROP CONSTRAINT ' || quote_ident(pk_name);
                END IF;
                ALTER TABLE plex_library_items ADD CONSTRAINT plex_library_items_pkey PRIMARY KEY (instance, server_id, rating_key);
            END IF;
        END
        $$;

DO $$
        DECLARE
            pk_name name;
            pk_columns text[];
        BEGIN
            SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord) INTO pk_name, pk_columns
            FROM pg_constraint AS c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = 'tautulli_watch_history'::regclass AND c.contype = 'p'
            GROUP BY c.conname;
            IF pk_columns IS DISTINCT FROM ARRAY['instance', 'row_id'] THEN
                IF pk_name IS NOT NULL THEN
                    EXECUTE 'ALTER TABLE tautulli_watch_history DROP CONSTRAINT ' || quote_ident(pk_name);
                END IF;
                ALTER TABLE tautulli_watch_history ADD CONSTRAINT tautulli_watch_history_pkey PRIMARY KEY (instance, row_id);
            END IF;
        END
        $$;

DO $$
        DECLARE
            pk_name name;
            pk_columns text[];
        BEGIN
            SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord) INTO pk_name, pk_columns
            FROM pg_constraint AS c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = 'sonarr_series'::regclass AND c.contype = 'p'
            GROUP BY c.conname;
            IF pk_columns IS DISTINCT FROM ARRAY['instance', 'id'] THEN
                IF pk_name IS NOT NULL THEN
                    EXECUTE 'ALTER TABLE sonarr_series DROP CONSTRAINT ' || quote_ident(pk_name);
                END IF;
                ALTER TABLE sonarr_series ADD CONSTRAINT sonarr_series_pkey PRIMARY KEY (instance, id);
            END IF;
        END
        $$;

DO $$
        DECLARE
            pk_name name;
            pk_columns text[];
        BEGIN
            SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord) INTO pk_name, pk_columns
            FROM pg_constraint AS c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = 'radarr_movies'::regclass AND c.contype = 'p'
            GROUP BY c.conname;
            IF pk_columns IS DISTINCT FROM ARRAY['instance', 'id'] THEN
                IF pk_name IS NOT NULL THEN
                    EXECUTE 'ALTER TABLE radarr_movies DROP CONSTRAINT ' || quote_ident(pk_name);
                END IF;
                ALTER TABLE radarr_movies ADD CONSTRAINT radarr_movies_pkey PRIMARY KEY (instance, id);
            END IF;
        END
        $$;

DO $$
        DECLARE
            pk_name name;
            pk_columns text[];
        BEGIN
            SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord) INTO pk_name, pk_columns
            FROM pg_constraint AS c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = 'overseerr_requests'::regclass AND c.contype = 'p'
            GROUP BY c.conname;
            IF pk_columns IS DISTINCT FROM ARRAY['instance', 'id'] THEN
                IF pk_name IS NOT NULL THEN
                    EXECUTE 'ALTER TABLE overseerr_requests DROP CONSTRAINT ' || quote_ident(pk_name);
                END IF;
                ALTER TABLE overseerr_requests ADD CONSTRAINT overseerr_requests_pkey PRIMARY KEY (instance, id);
            END IF;
        END
        $$;

DO $$
        DECLARE
            pk_name name;
            pk_columns text[];
        BEGIN
            SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord) INTO pk_name, pk_columns
            FROM pg_constraint AS c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = 'watch_stats'::regclass AND c.contype = 'p'
            GROUP BY c.conname;
            IF pk_columns IS DISTINCT FROM ARRAY['instance', 'rating_key'] THEN
                IF pk_name IS NOT NULL THEN
                    EXECUTE 'ALTER TABLE watch_stats DROP CONSTRAINT ' || quote_ident(pk_name);
                END IF;
                ALTER TABLE watch_stats ADD CONSTRAINT watch_stats_pkey PRIMARY KEY (instance, rating_key);
            END IF;
        END
        $$;

CREATE TABLE IF NOT EXISTS media_catalog_copies (
    server_id TEXT NOT NULL, 
    rating_key TEXT NOT NULL, 
    service TEXT NOT NULL, 
    instance TEXT NOT NULL, 
    item_id INTEGER NOT NULL, 
    computed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    PRIMARY KEY (server_id, rating_key, service, instance)
);

UPDATE alembic_version SET version_num='011' WHERE alembic_version.version_num = '010';

COMMIT;

