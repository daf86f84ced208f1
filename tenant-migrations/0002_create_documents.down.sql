-- Undoes 0002_create_documents (docs/schema-migrations.md).
DROP TABLE documents;
DROP TYPE document_status;
