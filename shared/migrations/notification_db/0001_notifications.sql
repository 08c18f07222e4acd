-- Notifications recorded by the notifications function, one per event (event_id is unique, so a
-- redelivered event is recognised and not recorded twice).
CREATE TABLE notifications (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    message      TEXT NOT NULL,
    product_id   BIGINT,
    order_id     BIGINT,
    -- The event as it arrived, and where from (topic/partition/offset).
    event        TEXT NOT NULL,
    source       TEXT NOT NULL,
    -- When it was sent to the alerts queue (low_stock_alert and order_created only).
    forwarded_at TIMESTAMPTZ,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
