-- Hashing of API keys and encryption of PII fields.
CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA public;
