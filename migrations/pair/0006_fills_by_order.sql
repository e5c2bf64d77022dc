-- Retention deletes an order together with its fills, and keeps an order any of whose fills is
-- still needed: both look fills up by order, which was a full scan of the table.
CREATE INDEX fills_by_order ON fills (client_order_id);
