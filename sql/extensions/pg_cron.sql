-- pg_cron runs the lake's scheduled jobs. It can only live in the database named by
-- cron.database_name; other databases (tests, a second lake) get their jobs scheduled from there.
DO $$
BEGIN
    IF current_setting('cron.database_name', true) = current_database() THEN
        CREATE EXTENSION IF NOT EXISTS pg_cron;
    ELSE
        RAISE NOTICE 'pg_cron is not created in database %: cron.database_name is %',
            current_database(), coalesce(current_setting('cron.database_name', true), '(unset)');
    END IF;
END
$$;
