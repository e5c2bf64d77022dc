-- Queries of every tick and every order that scanned history (found by profiling tick-to-decision,
-- checked with EXPLAIN QUERY PLAN):
-- - the order-rate check counts this minute's orders that were not rejected: with the status in
--   the index it reads the index alone, not one table row per order;
-- - the pyramiding check asks whether an add level was refused before: it scanned every rejection.
-- (The outbox read, which scanned every order, is fixed in its query: it now starts from the outbox.)
DROP INDEX orders_by_created;
CREATE INDEX orders_by_created ON orders (created_at, status);
CREATE INDEX risk_rejections_by_order ON risk_rejections (client_order_id);
