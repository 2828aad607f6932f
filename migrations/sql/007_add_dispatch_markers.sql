BEGIN;

-- Running upgrade 006 -> 007

ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS attempt INTEGER NOT NULL DEFAULT 0;

ALTER TABLE sync_schedule ADD COLUMN IF NOT EXISTS run_key TEXT;

UPDATE alembic_version SET version_num='007' WHERE alembic_version.version_num = '006';

COMMIT;

