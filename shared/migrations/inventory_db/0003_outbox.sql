-- Transactional outbox for inventory-events. A trigger on products writes each change's events in
-- the same transaction as the change, whoever makes it (the product functions, reserve_stock,
-- release_stock, an operator's SQL): a committed change always has its events, a rolled-back one
-- never does. Publishers read the rows after commit and mark them published.

-- Settings of the inventory data. low_stock_threshold is written by stockroom-migrate from
-- LOW_STOCK_THRESHOLD (default 10) when it runs.
CREATE TABLE inventory_settings (
    singleton           BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    low_stock_threshold INTEGER NOT NULL DEFAULT 10 CHECK (low_stock_threshold >= 0)
);
INSERT INTO inventory_settings DEFAULT VALUES;

CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    message_key  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    -- The writing transaction, so the function that committed it can publish exactly its events.
    txid         BIGINT NOT NULL DEFAULT txid_current(),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_unpublished_by_txid ON outbox (txid) WHERE published_at IS NULL;

-- Adds one event: the envelope every event shares (docs/events.md), plus its own fields.
CREATE FUNCTION outbox_add(p_type TEXT, p_topic TEXT, p_key TEXT, p_fields JSONB)
RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_event_id UUID := gen_random_uuid();
BEGIN
    INSERT INTO outbox (event_id, topic, message_key, payload)
    VALUES (v_event_id, p_topic, p_key, (jsonb_build_object(
        'event_id', v_event_id,
        'event_type', p_type,
        'version', 1,
        'occurred_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'timestamp', floor(extract(epoch FROM now()))::BIGINT
    ) || p_fields)::TEXT);
END $$;

CREATE FUNCTION products_events()
RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_threshold INTEGER := (SELECT low_stock_threshold FROM inventory_settings);
    v_row       products%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        v_row := OLD;
    ELSE
        v_row := NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NULL;
    END IF;
    PERFORM outbox_add(
        CASE TG_OP WHEN 'INSERT' THEN 'product_created' WHEN 'UPDATE' THEN 'product_updated' ELSE 'product_deleted' END,
        'inventory-events', v_row.id::TEXT,
        jsonb_build_object('product_id', v_row.id, 'name', v_row.name, 'stock', v_row.stock, 'price', v_row.price));
    -- One alert per crossing from at-or-above the threshold to below it; a product created below
    -- it counts as crossing.
    IF (TG_OP = 'INSERT' AND NEW.stock < v_threshold)
       OR (TG_OP = 'UPDATE' AND OLD.stock >= v_threshold AND NEW.stock < v_threshold) THEN
        PERFORM outbox_add('low_stock_alert', 'inventory-events', v_row.id::TEXT,
            jsonb_build_object('product_id', v_row.id, 'name', v_row.name, 'stock', v_row.stock,
                               'threshold', v_threshold));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER products_events
AFTER INSERT OR UPDATE OR DELETE ON products
FOR EACH ROW EXECUTE FUNCTION products_events();

-- The order functions publish the inventory events their reservations caused: they may read the
-- unpublished events of their own transaction and mark events published, nothing more.
CREATE FUNCTION outbox_unpublished(p_txid BIGINT)
RETURNS TABLE (id BIGINT, event_id UUID, topic TEXT, message_key TEXT, payload TEXT)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.id, o.event_id, o.topic, o.message_key, o.payload
    FROM outbox AS o
    WHERE o.txid = p_txid AND o.published_at IS NULL
    ORDER BY o.id
$$;

CREATE FUNCTION outbox_mark_published(p_ids BIGINT[])
RETURNS VOID
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE outbox SET published_at = now() WHERE id = ANY (p_ids) AND published_at IS NULL
$$;

REVOKE ALL ON FUNCTION outbox_add(TEXT, TEXT, TEXT, JSONB), products_events(),
    outbox_unpublished(BIGINT), outbox_mark_published(BIGINT[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_unpublished(BIGINT), outbox_mark_published(BIGINT[]) TO stockroom_orders;
