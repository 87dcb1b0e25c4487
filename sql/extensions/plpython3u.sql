-- PL/Python runs validation, PII detection and quality checks inside the server.
CREATE EXTENSION IF NOT EXISTS plpython3u;
