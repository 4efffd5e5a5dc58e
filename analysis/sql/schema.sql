-- Tables of the outcomes database.  Created on every writable connection;
-- every statement is idempotent.  No column here ever holds a name, date of
-- birth, address, phone, e-mail or other identifying value.

CREATE TABLE IF NOT EXISTS ingest_log (
    ingest_id                   BIGINT PRIMARY KEY,
    file_name                   VARCHAR NOT NULL,
    export_kind                 VARCHAR,          -- 'sessions' | 'medications' | 'measurements' | 'fhir'
    sha256                      VARCHAR,
    ingested_at                 TIMESTAMP NOT NULL,
    status                      VARCHAR NOT NULL, -- 'ingested' | 'refused'
    rows_read                   BIGINT,
    rows_accepted               BIGINT,
    rows_quarantined            BIGINT,
    duplicates_collapsed        BIGINT,
    values_nulled               BIGINT,
    rows_replaced               BIGINT,
    dropped_identifying_columns VARCHAR[],
    unknown_columns             VARCHAR[],
    message                     VARCHAR,
    pseudonymised_columns       VARCHAR[]         -- identifying patient key stored as pseudonyms
);
-- A database made before the column existed.
ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS pseudonymised_columns VARCHAR[];

-- Marks on the data as a whole.  'synthetic': the rows are invented (the
-- bundled demo clinic marks its database so, analysis.sources), and every
-- report, memo and summary made from them, or from a copy of the file, says
-- so on every page and sheet.
CREATE TABLE IF NOT EXISTS dataset_marks (
    mark      VARCHAR PRIMARY KEY,
    marked_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS visits (
    natural_key        VARCHAR NOT NULL,  -- 'id:<visit_id>' or 'pt:<patient>|<date>|<type>'
    patient_id         VARCHAR NOT NULL,
    visit_date         DATE NOT NULL,
    visit_type         VARCHAR NOT NULL,  -- intake | infusion | booster | follow_up
    visit_id           VARCHAR,
    condition          VARCHAR,           -- canonical name, 'Other', or NULL when the row has none
    condition_raw      VARCHAR,
    site               VARCHAR,
    route              VARCHAR,
    ketamine_mg        DOUBLE,
    weight_kg          DOUBLE,
    pain_score         DOUBLE,
    pain_post          DOUBLE,
    opioid_mme_per_day DOUBLE,
    benzodiazepine     BOOLEAN,
    phq9               INTEGER,
    pcl5               INTEGER,
    pgic               INTEGER,
    adverse_event      VARCHAR,
    sbp_max            DOUBLE,
    spo2_min           DOUBLE,
    ingest_id          BIGINT NOT NULL,
    source_line        BIGINT,
    provider           VARCHAR            -- pseudonymous clinician code (optional column)
);
-- A database made before the provider column existed.
ALTER TABLE visits ADD COLUMN IF NOT EXISTS provider VARCHAR;

CREATE TABLE IF NOT EXISTS medications (
    patient_id    VARCHAR NOT NULL,
    record_date   DATE NOT NULL,
    drug_raw      VARCHAR NOT NULL,
    drug          VARCHAR,            -- generic name; NULL when not recognised
    drug_class    VARCHAR NOT NULL,   -- opioid | benzodiazepine | none | unknown
    dose          DOUBLE,
    unit          VARCHAR,
    doses_per_day DOUBLE,
    mme           DOUBLE,             -- daily MME of this row (opioids); NULL when unknown
    ingest_id     BIGINT NOT NULL,
    source_line   BIGINT
);

CREATE TABLE IF NOT EXISTS quarantine (
    ingest_id BIGINT NOT NULL,
    file_name VARCHAR NOT NULL,
    line      BIGINT,
    raw_row   VARCHAR,   -- JSON of the row's recognised columns, as exported
    reason    VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS value_issues (
    ingest_id   BIGINT NOT NULL,
    file_name   VARCHAR NOT NULL,
    line        BIGINT,
    column_name VARCHAR NOT NULL,
    raw_value   VARCHAR,
    reason      VARCHAR NOT NULL
);
