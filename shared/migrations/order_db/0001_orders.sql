-- Orders. One row per ordered item; the rows of one request share an order_ref, which is also the
-- key of their stock reservation in inventory_db.
--
-- status: 'pending'    written before stock is reserved (the saga's first step)
--         'confirmed'  stock reserved, prices known
--         'failed'     never placed (stock or product missing, or given up by the reconciler); hidden
--         'cancelling' a cancel is returning the stock
--         'cancelled'  stock returned
CREATE TABLE orders (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_ref   UUID NOT NULL,
    user_id     BIGINT NOT NULL DEFAULT 0 CHECK (user_id >= 0),
    product_id  BIGINT NOT NULL CHECK (product_id > 0),
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    unit_price  NUMERIC(12, 2),
    total_price NUMERIC(20, 2),
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'confirmed', 'failed', 'cancelling', 'cancelled')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (status IN ('pending', 'failed') OR (unit_price IS NOT NULL AND total_price IS NOT NULL))
);

CREATE INDEX orders_by_ref ON orders (order_ref);
CREATE INDEX orders_by_user ON orders (user_id, id DESC);
CREATE INDEX orders_unsettled ON orders (updated_at) WHERE status IN ('pending', 'cancelling');

-- Idempotency-Key of POST /api/orders and /api/orders/bulk: the canonical request it was first used
-- with, the order reference it claimed, and once settled the response to replay.
CREATE TABLE idempotency_keys (
    key             TEXT PRIMARY KEY,
    request         TEXT NOT NULL,
    order_ref       UUID NOT NULL,
    response_status SMALLINT,
    response_body   TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL
);

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
