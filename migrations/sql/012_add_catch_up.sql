BEGIN;

-- Running upgrade 011 -> 012

CREATE TABLE IF NOT EXISTS catch_up_state (
    service TEXT NOT NULL, 
    instance TEXT DEFAULT 'default' NOT NULL, 
    enabled BOOLEAN DEFAULT true NOT NULL, 
    interval_minutes INTEGER DEFAULT 5 NOT NULL, 
    watermark TIMESTAMP WITH TIME ZONE, 
    polled_at TIMESTAMP WITH TIME ZONE, 
    fingerprint JSONB, 
    run_key TEXT, 
    run_until TIMESTAMP WITH TIME ZONE, 
    run_ids JSONB, 
    run_unannounced INTEGER, 
    last_error TEXT, 
    health TEXT, 
    health_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (service, instance), 
    CONSTRAINT ck_catch_up_state_service CHECK (service IN ('plex', 'tautulli', 'sonarr', 'radarr', 'overseerr')), 
    CONSTRAINT ck_catch_up_state_interval_minutes CHECK (interval_minutes BETWEEN 1 AND 1440)
);

CREATE TABLE IF NOT EXISTS catch_up_found (
    id UUID NOT NULL, 
    service TEXT NOT NULL, 
    instance TEXT DEFAULT 'default' NOT NULL, 
    found_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    changes INTEGER NOT NULL, 
    unannounced INTEGER NOT NULL, 
    run_id TEXT, 
    PRIMARY KEY (id)
);

CREATE INDEX IF NOT EXISTS ix_catch_up_found_found_at ON catch_up_found (found_at);

UPDATE alembic_version SET version_num='012' WHERE alembic_version.version_num = '011';

COMMIT;

