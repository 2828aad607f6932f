BEGIN;

-- Running upgrade 008 -> 009

ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS run_created_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS run_started_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS sync_started_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS sync_finished_at TIMESTAMP WITH TIME ZONE;

UPDATE alembic_version SET version_num='009' WHERE alembic_version.version_num = '008';

COMMIT;

