-- A version per product, moved by every change of its row (a PUT, a sale, a cancel, a release),
-- so a client can say "replace it only if it is still the version I read" (`If-Match` on PUT)
-- and a restock never erases the sales made since it was read.
ALTER TABLE products ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

CREATE FUNCTION products_next_version()
RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER products_next_version
BEFORE UPDATE ON products
FOR EACH ROW EXECUTE FUNCTION products_next_version();
