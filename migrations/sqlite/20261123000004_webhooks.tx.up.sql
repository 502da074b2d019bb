CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL, -- JSON array of event types, "*" for all
    secret          TEXT NOT NULL,
    disabled_at     TIMESTAMP,     -- NULL while enabled
    disabled_reason TEXT NOT NULL DEFAULT '',
    failing_since   TIMESTAMP,     -- first failed attempt since the last success
    created_at      TIMESTAMP NOT NULL
);

--bun:split

CREATE TABLE webhook_deliveries (
    id                 TEXT PRIMARY KEY, -- 'wd_' + event id + endpoint id: one delivery per event and endpoint
    endpoint_id        TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id           TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    object_id          TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending',
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    TIMESTAMP NOT NULL,
    retry_from         TIMESTAMP NOT NULL, -- start of the retry window
    last_attempt_at    TIMESTAMP,
    last_response_code INTEGER,
    last_error         TEXT NOT NULL DEFAULT '',
    delivered_at       TIMESTAMP,
    created_at         TIMESTAMP NOT NULL
);

--bun:split

CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

--bun:split

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

--bun:split

CREATE INDEX webhook_deliveries_object ON webhook_deliveries (endpoint_id, object_id, id) WHERE status = 'pending';

--bun:split

CREATE TABLE webhook_attempts (
    id            TEXT PRIMARY KEY,
    delivery_id   TEXT NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at  TIMESTAMP NOT NULL,
    response_code INTEGER,
    error         TEXT NOT NULL DEFAULT '',
    duration_ms   BIGINT NOT NULL
);

--bun:split

CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
