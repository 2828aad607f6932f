BEGIN;

-- Running upgrade 009 -> 010

CREATE TABLE IF NOT EXISTS webhook_rollup (
    span INTEGER NOT NULL, 
    slot BIGINT NOT NULL, 
    source TEXT NOT NULL, 
    figures JSONB NOT NULL, 
    PRIMARY KEY (span, slot, source)
);

CREATE TABLE IF NOT EXISTS webhook_rollup_stale (
    hour BIGINT NOT NULL, 
    writer BIGINT DEFAULT 0 NOT NULL, 
    PRIMARY KEY (hour, writer)
);

CREATE OR REPLACE FUNCTION webhook_rollup_mark_stale() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO webhook_rollup_stale (hour, writer)
                SELECT DISTINCT CAST(FLOOR(EXTRACT(EPOCH FROM received_at) / 3600) AS BIGINT), txid_current() FROM new_rows ON CONFLICT DO NOTHING;
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO webhook_rollup_stale (hour, writer)
                SELECT DISTINCT CAST(FLOOR(EXTRACT(EPOCH FROM received_at) / 3600) AS BIGINT), txid_current() FROM old_rows ON CONFLICT DO NOTHING;
            ELSE
                INSERT INTO webhook_rollup_stale (hour, writer)
                SELECT hour, txid_current() FROM (
                    SELECT CAST(FLOOR(EXTRACT(EPOCH FROM received_at) / 3600) AS BIGINT) AS hour FROM old_rows UNION SELECT CAST(FLOOR(EXTRACT(EPOCH FROM received_at) / 3600) AS BIGINT) FROM new_rows
                ) AS touched
                ON CONFLICT DO NOTHING;
            END IF;
            RETURN NULL;
        END
        $$;

DROP TRIGGER IF EXISTS webhook_rollup_on_insert ON webhook_log;

CREATE TRIGGER webhook_rollup_on_insert AFTER INSERT ON webhook_log REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION webhook_rollup_mark_stale();

DROP TRIGGER IF EXISTS webhook_rollup_on_update ON webhook_log;

CREATE TRIGGER webhook_rollup_on_update AFTER UPDATE ON webhook_log REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION webhook_rollup_mark_stale();

DROP TRIGGER IF EXISTS webhook_rollup_on_delete ON webhook_log;

CREATE TRIGGER webhook_rollup_on_delete AFTER DELETE ON webhook_log REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION webhook_rollup_mark_stale();

INSERT INTO webhook_rollup_stale (hour) SELECT DISTINCT CAST(FLOOR(EXTRACT(EPOCH FROM received_at) / 3600) AS BIGINT) FROM webhook_log ON CONFLICT DO NOTHING;

UPDATE alembic_version SET version_num='010' WHERE alembic_version.version_num = '009';

COMMIT;

