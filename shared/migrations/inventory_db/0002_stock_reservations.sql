-- Stock reservations: the narrow contract through which the order service takes and returns stock.
--
-- The order service never touches product rows. It calls these SECURITY DEFINER functions as the
-- role stockroom_orders, which may execute them and nothing else. A reservation is keyed by the
-- order reference (one per order request); each line is one order (its id in order_db).
-- Every function is idempotent by that reference, so a retry or a reconciler can call it again.

CREATE TABLE stock_reservations (
    order_ref  UUID PRIMARY KEY,
    -- 'reserved': stock was taken. 'void': the reference was given up before anything was reserved;
    -- it can never reserve afterwards (this settles a race between a slow request and the reconciler).
    status     TEXT NOT NULL CHECK (status IN ('reserved', 'void')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE stock_reservation_lines (
    order_ref   UUID NOT NULL REFERENCES stock_reservations ON DELETE CASCADE,
    line        BIGINT NOT NULL,
    -- No foreign key: a product may be deleted while orders for it exist.
    product_id  BIGINT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    unit_price  NUMERIC(12, 2) NOT NULL,
    released_at TIMESTAMPTZ,
    PRIMARY KEY (order_ref, line)
);

CREATE INDEX stock_reservations_open ON stock_reservations (created_at) WHERE status = 'reserved';

-- Reserves every line or none: each product's total quantity is taken with a conditional decrement
-- (stock >= quantity) in product-id order, so concurrent reservations queue on the row lock instead
-- of overselling or deadlocking. Failure raises SR001 (unknown product) or SR002 (insufficient
-- stock), with JSON details, and rolls everything back. Calling it again with the same reference
-- returns the lines already reserved; a voided reference raises SR003.
-- p_lines: [{"line": <order id>, "product_id": <id>, "quantity": <n>}, ...]
CREATE FUNCTION reserve_stock(p_order_ref UUID, p_lines JSONB)
RETURNS TABLE (line BIGINT, product_id BIGINT, quantity INTEGER, unit_price NUMERIC)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_status TEXT;
    v_need   RECORD;
    v_price  NUMERIC;
    v_stock  INTEGER;
BEGIN
    INSERT INTO stock_reservations (order_ref, status) VALUES (p_order_ref, 'reserved')
    ON CONFLICT (order_ref) DO NOTHING;
    IF NOT FOUND THEN
        SELECT r.status INTO v_status FROM stock_reservations r WHERE r.order_ref = p_order_ref;
        IF v_status = 'void' THEN
            RAISE EXCEPTION 'order reference % was voided', p_order_ref USING ERRCODE = 'SR003';
        END IF;
    ELSE
        FOR v_need IN
            SELECT (e ->> 'product_id')::BIGINT AS product_id, sum((e ->> 'quantity')::INTEGER)::INTEGER AS quantity
            FROM jsonb_array_elements(p_lines) AS e
            GROUP BY 1
            ORDER BY 1
        LOOP
            UPDATE products AS p SET stock = p.stock - v_need.quantity, updated_at = now()
            WHERE p.id = v_need.product_id AND p.stock >= v_need.quantity
            RETURNING p.price INTO v_price;
            IF NOT FOUND THEN
                SELECT p.stock INTO v_stock FROM products AS p WHERE p.id = v_need.product_id;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'product % does not exist', v_need.product_id
                        USING ERRCODE = 'SR001',
                              DETAIL = json_build_object('product_id', v_need.product_id)::TEXT;
                END IF;
                RAISE EXCEPTION 'insufficient stock for product %', v_need.product_id
                    USING ERRCODE = 'SR002',
                          DETAIL = json_build_object('product_id', v_need.product_id,
                                                     'requested', v_need.quantity,
                                                     'available', v_stock)::TEXT;
            END IF;
            INSERT INTO stock_reservation_lines (order_ref, line, product_id, quantity, unit_price)
            SELECT p_order_ref, (e ->> 'line')::BIGINT, v_need.product_id, (e ->> 'quantity')::INTEGER, v_price
            FROM jsonb_array_elements(p_lines) AS e
            WHERE (e ->> 'product_id')::BIGINT = v_need.product_id;
        END LOOP;
    END IF;
    RETURN QUERY
        SELECT l.line, l.product_id, l.quantity, l.unit_price
        FROM stock_reservation_lines AS l
        WHERE l.order_ref = p_order_ref
        ORDER BY l.line;
END $$;

-- Returns the stock of one line (p_line) or of every line of a reservation to the products, once:
-- released lines are marked and never returned twice. Returns how many lines it released.
CREATE FUNCTION release_stock(p_order_ref UUID, p_line BIGINT DEFAULT NULL)
RETURNS INTEGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_give  RECORD;
    v_count INTEGER;
BEGIN
    -- Serialises releases of the same reservation.
    PERFORM 1 FROM stock_reservations WHERE order_ref = p_order_ref FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    FOR v_give IN
        SELECT l.product_id, sum(l.quantity)::INTEGER AS quantity
        FROM stock_reservation_lines AS l
        WHERE l.order_ref = p_order_ref AND (p_line IS NULL OR l.line = p_line) AND l.released_at IS NULL
        GROUP BY 1
        ORDER BY 1
    LOOP
        UPDATE products SET stock = stock + v_give.quantity, updated_at = now() WHERE id = v_give.product_id;
    END LOOP;
    UPDATE stock_reservation_lines
    SET released_at = now()
    WHERE order_ref = p_order_ref AND (p_line IS NULL OR line = p_line) AND released_at IS NULL;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$;

-- Settles a reference whose request may have died: if nothing was reserved yet, marks it void so
-- nothing ever will be; returns the reference's status ('reserved' or 'void').
CREATE FUNCTION void_reservation(p_order_ref UUID)
RETURNS TEXT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_status TEXT;
BEGIN
    INSERT INTO stock_reservations (order_ref, status) VALUES (p_order_ref, 'void')
    ON CONFLICT (order_ref) DO NOTHING;
    SELECT status INTO v_status FROM stock_reservations WHERE order_ref = p_order_ref;
    RETURN v_status;
END $$;

-- The lines of a reservation, for the reconciler to confirm orders whose request died.
CREATE FUNCTION reservation_lines(p_order_ref UUID)
RETURNS TABLE (line BIGINT, product_id BIGINT, quantity INTEGER, unit_price NUMERIC, released BOOLEAN)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT l.line, l.product_id, l.quantity, l.unit_price, l.released_at IS NOT NULL
    FROM stock_reservation_lines AS l
    WHERE l.order_ref = p_order_ref
    ORDER BY l.line
$$;

-- Reservations older than p_age that still hold stock: the reconciler checks they have an order.
CREATE FUNCTION stale_reservations(p_age INTERVAL)
RETURNS SETOF UUID
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.order_ref
    FROM stock_reservations AS r
    WHERE r.status = 'reserved'
      AND r.created_at < now() - p_age
      AND EXISTS (SELECT 1 FROM stock_reservation_lines AS l
                  WHERE l.order_ref = r.order_ref AND l.released_at IS NULL)
    ORDER BY r.created_at
    LIMIT 500
$$;

-- The order service's role: it may call the contract, and read or write nothing else.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stockroom_orders') THEN
        CREATE ROLE stockroom_orders NOLOGIN;
    END IF;
END $$;

REVOKE ALL ON FUNCTION reserve_stock(UUID, JSONB), release_stock(UUID, BIGINT), void_reservation(UUID),
    reservation_lines(UUID), stale_reservations(INTERVAL) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reserve_stock(UUID, JSONB), release_stock(UUID, BIGINT), void_reservation(UUID),
    reservation_lines(UUID), stale_reservations(INTERVAL) TO stockroom_orders;
