BEGIN;

CREATE TABLE IF NOT EXISTS alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 005

CREATE TABLE IF NOT EXISTS webhook_log (
    id UUID DEFAULT gen_random_uuid() NOT NULL, 
    source TEXT NOT NULL, 
    event_type TEXT NOT NULL, 
    payload JSONB NOT NULL, 
    received_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
    processed BOOLEAN DEFAULT false NOT NULL, 
    processed_at TIMESTAMP WITH TIME ZONE, 
    error_message TEXT, 
    status TEXT DEFAULT 'pending' NOT NULL, 
    dispatched_at TIMESTAMP WITH TIME ZONE, 
    run_key TEXT, 
    run_id TEXT, 
    PRIMARY KEY (id), 
    CONSTRAINT ck_webhook_log_source CHECK (source IN ('plex', 'tautulli', 'sonarr', 'radarr', 'overseerr')), 
    CONSTRAINT ck_webhook_log_status CHECK (status IN ('pending', 'dispatched', 'processed', 'failed', 'ignored'))
);

CREATE TABLE IF NOT EXISTS sync_schedule (
    id UUID DEFAULT gen_random_uuid() NOT NULL, 
    service TEXT NOT NULL, 
    enabled BOOLEAN DEFAULT true NOT NULL, 
    interval_hours INTEGER DEFAULT 6 NOT NULL, 
    last_run_at TIMESTAMP WITH TIME ZONE, 
    next_run_at TIMESTAMP WITH TIME ZONE, 
    run_count INTEGER DEFAULT 0 NOT NULL, 
    last_status TEXT, 
    last_error TEXT, 
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
    sync_requested_at TIMESTAMP WITH TIME ZONE, 
    PRIMARY KEY (id), 
    CONSTRAINT uq_sync_schedule_service UNIQUE (service), 
    CONSTRAINT ck_sync_schedule_service CHECK (service IN ('plex', 'tautulli', 'sonarr', 'radarr', 'overseerr')), 
    CONSTRAINT ck_sync_schedule_interval_hours CHECK (interval_hours BETWEEN 1 AND 168)
);

DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                           AND table_name = 'webhook_log' AND column_name = 'status') THEN
                ALTER TABLE webhook_log ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';
                UPDATE webhook_log SET status = CASE WHEN NOT coalesce(processed, false) THEN 'pending'
                    WHEN error_message IS NOT NULL THEN 'failed' ELSE 'processed' END;
                ALTER TABLE webhook_log ADD CONSTRAINT ck_webhook_log_status
                    CHECK (status IN ('pending', 'dispatched', 'processed', 'failed', 'ignored'));
            END IF;
        END
        $$;

ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS dispatched_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS run_key TEXT;

ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS run_id TEXT;

ALTER TABLE sync_schedule ADD COLUMN IF NOT EXISTS sync_requested_at TIMESTAMP WITH TIME ZONE;

CREATE INDEX IF NOT EXISTS ix_webhook_log_source ON webhook_log (source);

CREATE INDEX IF NOT EXISTS ix_webhook_log_event_type ON webhook_log (event_type);

CREATE INDEX IF NOT EXISTS ix_webhook_log_received_at ON webhook_log (received_at DESC);

CREATE INDEX IF NOT EXISTS ix_webhook_log_processed ON webhook_log (processed);

CREATE INDEX IF NOT EXISTS ix_webhook_log_pending ON webhook_log (received_at) WHERE status = 'pending';

CREATE INDEX IF NOT EXISTS ix_webhook_log_dispatched ON webhook_log (run_key) WHERE status = 'dispatched';

CREATE OR REPLACE FUNCTION sync_schedule_touch_updated_at() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                NEW.updated_at := now();
                RETURN NEW;
            END
            $$;

DROP TRIGGER IF EXISTS sync_schedule_touch_updated_at ON sync_schedule;

CREATE TRIGGER sync_schedule_touch_updated_at BEFORE UPDATE ON sync_schedule FOR EACH ROW EXECUTE FUNCTION sync_schedule_touch_updated_at();

INSERT INTO sync_schedule (id, service, enabled, interval_hours) VALUES (gen_random_uuid(), 'plex', true, 12) ON CONFLICT DO NOTHING;

INSERT INTO sync_schedule (id, service, enabled, interval_hours) VALUES (gen_random_uuid(), 'tautulli', true, 6) ON CONFLICT DO NOTHING;

INSERT INTO sync_schedule (id, service, enabled, interval_hours) VALUES (gen_random_uuid(), 'sonarr', false, 24) ON CONFLICT DO NOTHING;

INSERT INTO sync_schedule (id, service, enabled, interval_hours) VALUES (gen_random_uuid(), 'radarr', false, 24) ON CONFLICT DO NOTHING;

INSERT INTO sync_schedule (id, service, enabled, interval_hours) VALUES (gen_random_uuid(), 'overseerr', false, 6) ON CONFLICT DO NOTHING;

INSERT INTO alembic_version (version_num) SELECT '005' WHERE NOT EXISTS (SELECT 1 FROM alembic_version);

COMMIT;

