-- Messages for SQS (alerts and dead letters), written in the same transaction as what they report.
-- Recording an event never depends on SQS: the notifications function sends what its batch queued
-- when it can, and the scheduled notifications-forwarder sends whatever is left, so an SQS outage
-- delays alerts and loses none.
CREATE TABLE sqs_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue           TEXT NOT NULL CHECK (queue IN ('alerts', 'dead_letters')),
    -- What the message is about, so a redelivered record never queues it twice: the event_id of
    -- an alert, the topic/partition/offset of a dead letter.
    dedupe_key      TEXT NOT NULL,
    body            TEXT NOT NULL,
    -- The notification an alert forwards (its forwarded_at is set when the message is sent).
    notification_id BIGINT REFERENCES notifications (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    UNIQUE (queue, dedupe_key)
);

CREATE INDEX sqs_outbox_unsent ON sqs_outbox (id) WHERE sent_at IS NULL;

-- Alerts recorded before this table existed whose sending failed: queue them now.
INSERT INTO sqs_outbox (queue, dedupe_key, body, notification_id)
SELECT 'alerts', event_id::text, event, id
FROM notifications
WHERE forwarded_at IS NULL AND event_type IN ('low_stock_alert', 'order_created');
