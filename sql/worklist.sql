-- worklist.db: the site's worklist items, MPPS instances and the outbox of
-- MPPS events for the cloud.
--
-- worklist_items keeps the seed's columns (accession_number,
-- patient_id, patient_name, scheduled_date, scheduled_time, modality,
-- status, source_message_id) so the seed's sqlite3 one-liners still work.
-- Status values are the DICOM ones, with the space.  Each item's Study
-- Instance UID is generated once, at creation (2.25.<uuid as decimal>).
-- scheduled_date (YYYYMMDD) and scheduled_time (HH[MM[SS[.F]]]) are in
-- UTC, as the cloud sends them (the production gateway's columns mean the
-- same); mwlscp and mwlsync export-wl show them in the site's local time
-- (WORKLIST_TIMEZONE).  scheduled_station_aet is the station the cloud
-- named, NULL when it named none (every station's item).
--
-- mpps holds every MPPS instance with the last dataset it was given
-- (explicit VR little endian, UTF-8), so an N-SET after a restart works.
-- outbox rows are written in the transaction of the change they report;
-- sent_at is set once the event is in the relay spool.
--
-- Sections start with "-- version: N" and are applied once each, in order,
-- by db_migrate(), which records the last in PRAGMA user_version.

-- version: 1

CREATE TABLE worklist_items (
	accession_number		TEXT PRIMARY KEY,
	patient_id			TEXT NOT NULL,
	patient_name			TEXT NOT NULL,
	scheduled_date			TEXT NOT NULL,
	scheduled_time			TEXT NOT NULL,
	modality			TEXT NOT NULL,
	status				TEXT NOT NULL DEFAULT 'SCHEDULED'
	    CHECK (status IN ('SCHEDULED', 'IN PROGRESS', 'COMPLETED',
	    'DISCONTINUED')),
	source_message_id		TEXT UNIQUE,
	birth_date			TEXT,
	sex				TEXT,
	study_description		TEXT,
	requested_procedure_id		TEXT,
	requested_procedure_description	TEXT,
	scheduled_station_aet		TEXT,
	scheduled_station_name		TEXT,
	study_instance_uid		TEXT NOT NULL UNIQUE,
	spsid				TEXT,
	created_at			TEXT NOT NULL
	    DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	updated_at			TEXT NOT NULL
	    DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX worklist_items_date ON worklist_items(scheduled_date);
CREATE INDEX worklist_items_modality ON worklist_items(modality);
CREATE INDEX worklist_items_status ON worklist_items(status, scheduled_date);

CREATE TABLE mpps (
	sop_instance_uid	TEXT PRIMARY KEY,
	accession_number	TEXT,
	status			TEXT NOT NULL
	    CHECK (status IN ('IN PROGRESS', 'COMPLETED', 'DISCONTINUED')),
	dataset			BLOB,	-- explicit VR LE, ISO_IR 192
	created_at		TEXT NOT NULL
	    DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	updated_at		TEXT NOT NULL
	    DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX mpps_accession ON mpps(accession_number);

CREATE TABLE outbox (
	id		INTEGER PRIMARY KEY,
	event		TEXT NOT NULL,	-- one line of JSON
	created_at	TEXT NOT NULL
	    DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	sent_at		TEXT
);
CREATE INDEX outbox_unsent ON outbox(id) WHERE sent_at IS NULL;

-- version: 2

-- Items made before version 2 stored the default 'ANY' for "no station";
-- now that is NULL, and WORKLIST_STATION_AET is only what such an item
-- shows (mwlscp(8)).
UPDATE worklist_items SET scheduled_station_aet = NULL
    WHERE scheduled_station_aet = 'ANY';
