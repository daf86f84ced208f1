-- Which internal API key asked for what (docs/security.md): the keys whose requests a run
-- serves (a queued run several requests joined lists each once), and the key that last
-- retried a lifecycle workflow.
ALTER TABLE runs ADD COLUMN api_keys text[] NOT NULL DEFAULT '{}';
ALTER TABLE lifecycle_workflows ADD COLUMN retried_by_api_key text;
