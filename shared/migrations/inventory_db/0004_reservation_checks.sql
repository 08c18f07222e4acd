-- The reconciler looks for reservations that hold stock for no live order. Every confirmed order's
-- reservation holds stock for as long as the order stands, so re-examining all of them on every run
-- would grow without bound (and a LIMIT would starve the newest). Instead each reservation is
-- checked once, after the reconciler's timeout, and remembered as checked.
ALTER TABLE stock_reservations ADD COLUMN checked_at TIMESTAMPTZ;

-- Reservations older than a day were settled by the saga long ago.
UPDATE stock_reservations SET checked_at = now() WHERE created_at < now() - interval '1 day';

DROP INDEX stock_reservations_open;
CREATE INDEX stock_reservations_unchecked ON stock_reservations (created_at)
    WHERE status = 'reserved' AND checked_at IS NULL;

CREATE OR REPLACE FUNCTION stale_reservations(p_age INTERVAL)
RETURNS SETOF UUID
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.order_ref
    FROM stock_reservations AS r
    WHERE r.status = 'reserved'
      AND r.checked_at IS NULL
      AND r.created_at < now() - p_age
      AND EXISTS (SELECT 1 FROM stock_reservation_lines AS l
                  WHERE l.order_ref = r.order_ref AND l.released_at IS NULL)
    ORDER BY r.created_at
    LIMIT 500
$$;

CREATE FUNCTION reservation_checked(p_order_ref UUID)
RETURNS VOID
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE stock_reservations SET checked_at = now() WHERE order_ref = p_order_ref
$$;

REVOKE ALL ON FUNCTION reservation_checked(UUID) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reservation_checked(UUID) TO stockroom_orders;
