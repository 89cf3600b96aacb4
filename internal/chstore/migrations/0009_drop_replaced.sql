-- The tables migration 0007 replaced, once their rows were copied: a step of
-- its own, so that an interrupted 0007 can run again with its sources still
-- there.
DROP TABLE IF EXISTS {db}.dossier_state;
DROP TABLE IF EXISTS {db}.dossier_timeline;
DROP TABLE IF EXISTS {db}.dossier_events;
DROP TABLE IF EXISTS {db}.sensor_kpi_minute;
DROP TABLE IF EXISTS {db}.sensor_kpi_hour;
