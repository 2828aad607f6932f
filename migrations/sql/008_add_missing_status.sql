BEGIN;

-- Running upgrade 007 -> 008

ALTER TABLE webhook_log DROP CONSTRAINT IF EXISTS ck_webhook_log_status;

ALTER TABLE webhook_log ADD CONSTRAINT ck_webhook_log_status CHECK (status IN ('pending', 'dispatched', 'processed', 'failed', 'ignored', 'missing'));

UPDATE alembic_version SET version_num='008' WHERE alembic_version.version_num = '007';

COMMIT;

