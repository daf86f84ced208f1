-- Example application migration (docs/schema-migrations.md): tags on documents, searchable through
-- a GIN index.
ALTER TABLE documents ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX documents_tags_idx ON documents USING gin (tags);
