-- Transactional outbox for order-events: a trigger on orders writes order_created when an order is
-- confirmed and order_cancelled when it is cancelled, in the same transaction as the change.

CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    message_key  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    txid         BIGINT NOT NULL DEFAULT txid_current(),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_unpublished_by_txid ON outbox (txid) WHERE published_at IS NULL;

-- Same envelope as inventory_db's outbox_add (docs/events.md).
CREATE FUNCTION outbox_add(p_type TEXT, p_topic TEXT, p_key TEXT, p_fields JSONB)
RETURNS VOID
LANGUAGE plpgsql AS $$
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

CREATE FUNCTION orders_events()
RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = OLD.status OR NEW.status NOT IN ('confirmed', 'cancelled') THEN
        RETURN NULL;
    END IF;
    PERFORM outbox_add(
        CASE NEW.status WHEN 'confirmed' THEN 'order_created' ELSE 'order_cancelled' END,
        'order-events', NEW.id::TEXT,
        jsonb_build_object('order_id', NEW.id, 'product_id', NEW.product_id, 'user_id', NEW.user_id,
                           'quantity', NEW.quantity, 'unit_price', NEW.unit_price,
                           'total_price', NEW.total_price, 'status', NEW.status));
    RETURN NULL;
END $$;

CREATE TRIGGER orders_events
AFTER UPDATE OF status ON orders
FOR EACH ROW EXECUTE FUNCTION orders_events();

-- Publishers read the unpublished events of one transaction and mark events published through these
-- two functions, as they do in inventory_db.
CREATE FUNCTION outbox_unpublished(p_txid BIGINT)
RETURNS TABLE (id BIGINT, event_id UUID, topic TEXT, message_key TEXT, payload TEXT)
LANGUAGE sql STABLE AS $$
    SELECT o.id, o.event_id, o.topic, o.message_key, o.payload
    FROM outbox AS o
    WHERE o.txid = p_txid AND o.published_at IS NULL
    ORDER BY o.id
$$;

CREATE FUNCTION outbox_mark_published(p_ids BIGINT[])
RETURNS VOID
LANGUAGE sql AS $$
    UPDATE outbox SET published_at = now() WHERE id = ANY (p_ids) AND published_at IS NULL
$$;
