-- pgvector: embeddings for the AI service's similarity search.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;
    IF (SELECT string_to_array(extversion, '.')::int[] < '{0,5,1}' FROM pg_extension WHERE extname = 'vector') THEN
        RAISE EXCEPTION 'pgvector 0.5.1 or newer is required';
    END IF;
END
$$;
