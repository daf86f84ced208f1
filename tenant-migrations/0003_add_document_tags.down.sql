-- Undoes 0003_add_document_tags (docs/schema-migrations.md).
DROP INDEX documents_tags_idx;
ALTER TABLE documents DROP COLUMN tags;
