-- A subscription whose new tenant waits for a cell's first run (docs/cells.md, "Billing"): the
-- stack of that opening cell. When the cell is opened for placement its waiting subscriptions are
-- reconciled again; any other outcome clears it.
ALTER TABLE subscriptions ADD COLUMN waiting_for_cell text;
