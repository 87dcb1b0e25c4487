-- Geometry for location datasets.
CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public;
