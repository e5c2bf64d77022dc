-- Restart reconciliation looks up every order still resting at the broker: keep that off a full
-- scan of the order history (only a handful of rows are ever 'working').
CREATE INDEX orders_working ON orders (status) WHERE status = 'working';
