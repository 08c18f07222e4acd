-- Stock as BIGINT. A product's stock is set up to 2147483647 (the original API's integer), but
-- returning stock from a cancel or a release can take it past that: with INTEGER the release
-- failed, the cancel stayed `cancelling`, and every reconciler run failed on it from then on.
-- Writes still take at most 2147483647 (validation); only returns can go beyond.
ALTER TABLE products ALTER COLUMN stock TYPE BIGINT;
