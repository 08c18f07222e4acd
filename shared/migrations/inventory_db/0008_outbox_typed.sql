-- The outbox keeps each event's fields in typed columns, and the relay writes the event's JSON
-- (shared/src/events/store.rs, from the typed schema): building it here, with jsonb_build_object
-- and to_char on every change, spent the database (the one part that does not scale out) on work
-- any relay can do. No request reads or marks events any more (the relay alone publishes), so
-- the per-transaction index and the two functions the order role used to do so are gone.
-- Existing rows keep their id, event_id and time: converted from their JSON, they are sent as
-- they would have been.

CREATE TABLE outbox_typed (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     UUID NOT NULL DEFAULT gen_random_uuid(),
    event_type   TEXT NOT NULL CONSTRAINT outbox_event_type CHECK (event_type IN
                     ('product_created', 'product_updated', 'product_deleted', 'low_stock_alert')),
    product_id   BIGINT NOT NULL,
    name         TEXT NOT NULL,
    stock        BIGINT NOT NULL,
    -- The product events' price; a low_stock_alert's threshold.
    price        NUMERIC(12, 2),
    threshold    INTEGER,
    -- The change's transaction start: the event's occurred_at and timestamp.
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    CHECK ((event_type = 'low_stock_alert') = (threshold IS NOT NULL AND price IS NULL))
);

INSERT INTO outbox_typed (id, event_id, event_type, product_id, name, stock, price, threshold,
                          created_at, published_at)
OVERRIDING SYSTEM VALUE
SELECT o.id, o.event_id, p ->> 'event_type', (p ->> 'product_id')::BIGINT, p ->> 'name',
       (p ->> 'stock')::BIGINT, (p ->> 'price')::NUMERIC, (p ->> 'threshold')::INTEGER,
       o.created_at, o.published_at
FROM outbox AS o, LATERAL (SELECT o.payload::JSONB AS p) AS event
ORDER BY o.id;
SELECT setval(pg_get_serial_sequence('outbox_typed', 'id'), COALESCE(max(id), 0) + 1, false)
FROM outbox_typed;

DROP FUNCTION outbox_unpublished(BIGINT);
DROP FUNCTION outbox_mark_published(BIGINT[]);
DROP TABLE outbox;
ALTER TABLE outbox_typed RENAME TO outbox;
ALTER INDEX outbox_typed_pkey RENAME TO outbox_pkey;
-- The relay reads the oldest unpublished rows; the retention finds old ones by age.
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_created_at ON outbox USING brin (created_at);

-- The same events as before (docs/events.md), as plain inserts.
CREATE OR REPLACE FUNCTION products_events()
RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_row       products%ROWTYPE;
    v_threshold INTEGER;
BEGIN
    IF TG_OP = 'DELETE' THEN
        v_row := OLD;
    ELSE
        v_row := NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbox (event_type, product_id, name, stock, price)
    VALUES (CASE TG_OP WHEN 'INSERT' THEN 'product_created' WHEN 'UPDATE' THEN 'product_updated'
                       ELSE 'product_deleted' END,
            v_row.id, v_row.name, v_row.stock, v_row.price);
    -- One alert per crossing from at-or-above the threshold to below it; a product created below
    -- it counts as crossing.
    IF TG_OP <> 'DELETE' THEN
        v_threshold := (SELECT low_stock_threshold FROM inventory_settings);
        IF NEW.stock < v_threshold AND (TG_OP = 'INSERT' OR OLD.stock >= v_threshold) THEN
            INSERT INTO outbox (event_type, product_id, name, stock, threshold)
            VALUES ('low_stock_alert', NEW.id, NEW.name, NEW.stock, v_threshold);
        END IF;
    END IF;
    RETURN NULL;
END $$;

DROP FUNCTION outbox_add(TEXT, TEXT, TEXT, JSONB);
