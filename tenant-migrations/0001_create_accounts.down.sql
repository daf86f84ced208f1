-- Undoes 0001_create_accounts (docs/schema-migrations.md).
DROP TABLE accounts;
