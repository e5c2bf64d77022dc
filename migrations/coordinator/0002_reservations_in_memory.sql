-- Reservations moved to memory (an approval writes nothing, so its answer never waits for a
-- durable write); a new life of the coordinator rebuilds them from the pairs' unsettled orders.
DROP TABLE reservations;
