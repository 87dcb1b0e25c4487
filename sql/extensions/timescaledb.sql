-- Time-series helpers (Apache edition); preloaded by the embedded cluster.
CREATE EXTENSION IF NOT EXISTS timescaledb SCHEMA public;
