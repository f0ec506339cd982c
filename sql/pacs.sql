-- pacs.db: what the gateway stored and indexed.
--
-- Normalised tables (patients, studies, series, instances, objects,
-- receipts) and views that keep the seed's names and columns
-- (stored_instances, study_summary, series_summary) so the seed's sqlite3
-- one-liners still work.  Statistics are computed by views, never kept up
-- to date by triggers.
--
-- Objects are the files in the content store, named by the SHA-256 of
-- their bytes.  An instance (SOP Instance UID) points at its current
-- object.  Policy when one SOP Instance UID arrives with different bytes:
-- both objects are kept and recorded (objects.sop_instance_uid), and the
-- most recently received one is current (a modality re-sends an instance
-- to correct it); ties go to the later-indexed one.
--
-- Sections start with "-- version: N" and are applied once each, in order,
-- by db_migrate(), which records the last in PRAGMA user_version; they
-- change tables.  The views are the last section ("-- views"), made again
-- after the last version applied.

-- version: 1

CREATE TABLE patients (
	id		INTEGER PRIMARY KEY,
	patient_id	TEXT NOT NULL DEFAULT '',
	patient_name	TEXT NOT NULL DEFAULT '',
	birth_date	TEXT,
	sex		TEXT,
	UNIQUE (patient_id, patient_name)
);

CREATE TABLE studies (
	id			INTEGER PRIMARY KEY,
	study_instance_uid	TEXT NOT NULL UNIQUE,
	patient_ref		INTEGER NOT NULL REFERENCES patients(id),
	accession_number	TEXT,
	study_id		TEXT,
	study_date		TEXT,
	study_time		TEXT,
	study_description	TEXT
);
CREATE INDEX studies_accession ON studies(accession_number);
CREATE INDEX studies_patient ON studies(patient_ref);

CREATE TABLE series (
	id			INTEGER PRIMARY KEY,
	series_instance_uid	TEXT NOT NULL UNIQUE,
	study_ref		INTEGER NOT NULL REFERENCES studies(id),
	modality		TEXT,
	series_number		INTEGER,
	series_description	TEXT,
	body_part_examined	TEXT
);
CREATE INDEX series_study ON series(study_ref);

-- One row per file in the store.
CREATE TABLE objects (
	hash			TEXT PRIMARY KEY CHECK (length(hash) = 64),
	size			INTEGER NOT NULL,
	storage_path		TEXT NOT NULL,	-- relative to PACS_STORAGE_PATH
	sop_instance_uid	TEXT NOT NULL,
	transfer_syntax_uid	TEXT,
	first_received_at	TEXT NOT NULL
);
CREATE INDEX objects_sop ON objects(sop_instance_uid);

CREATE TABLE instances (
	id			INTEGER PRIMARY KEY,
	sop_instance_uid	TEXT NOT NULL UNIQUE,
	series_ref		INTEGER NOT NULL REFERENCES series(id),
	object_hash		TEXT NOT NULL REFERENCES objects(hash),
	sop_class_uid		TEXT,
	instance_number		INTEGER,
	image_type		TEXT,
	presentation_intent	TEXT,
	view_position		TEXT,
	laterality		TEXT,
	organ_dose		REAL,
	entrance_dose_in_mgy	REAL,
	kvp			REAL,
	exposure_in_uas		INTEGER,
	anode_target_material	TEXT,
	filter_material		TEXT,
	filter_thickness	REAL,
	manufacturer		TEXT,
	rows			INTEGER,
	columns			INTEGER,
	number_of_frames	INTEGER,
	bits_allocated		INTEGER,
	photometric_interpretation TEXT,
	received_at		TEXT NOT NULL,	-- of the current object
	source_aet		TEXT,
	status			TEXT NOT NULL DEFAULT 'STORED',
	thumbnail_status	TEXT NOT NULL DEFAULT 'PENDING',
	indexed_at		TEXT NOT NULL
);
CREATE INDEX instances_series ON instances(series_ref);

-- Every reception of an object: who sent it, from where, when.
CREATE TABLE receipts (
	id			INTEGER PRIMARY KEY,
	receipt_key		TEXT NOT NULL UNIQUE,	-- makes re-indexing idempotent
	object_hash		TEXT NOT NULL REFERENCES objects(hash),
	calling_aet		TEXT,
	called_aet		TEXT,
	peer_address		TEXT,
	received_at		TEXT NOT NULL
);
CREATE INDEX receipts_object ON receipts(object_hash);

-- version: 2
-- Previews (dcmthumb): where the PNG is, its size, and why one failed.
-- thumbnail_status: PENDING, GENERATED, FAILED (thumbnail_error says why),
-- SKIP (the object has no pixel data).
ALTER TABLE instances ADD COLUMN thumbnail_path TEXT;	-- relative to the thumbs dir
ALTER TABLE instances ADD COLUMN thumbnail_size INTEGER;
ALTER TABLE instances ADD COLUMN thumbnail_width INTEGER;
ALTER TABLE instances ADD COLUMN thumbnail_height INTEGER;
ALTER TABLE instances ADD COLUMN thumbnail_error TEXT;
ALTER TABLE instances ADD COLUMN thumbnail_at TEXT;

-- version: 3
-- Cloud delivery (relaysend): each instance's upload to the Manage API.
-- upload_status: PENDING (not tried yet), UPLOADING (a PUT in flight; found
-- at start, it is resumed), COMPLETE (201), FAILED (rejected for good:
-- upload_error says why; `relaysend --retry-failed` sends it again),
-- WAITING (retrying later: no worklist item for its accession number yet,
-- or the last attempt failed transiently; upload_next_attempt_at says when).
ALTER TABLE instances ADD COLUMN upload_status TEXT DEFAULT 'PENDING';
ALTER TABLE instances ADD COLUMN upload_attempt_count INTEGER DEFAULT 0;
ALTER TABLE instances ADD COLUMN upload_error TEXT;
ALTER TABLE instances ADD COLUMN uploaded_at TEXT;
ALTER TABLE instances ADD COLUMN upload_next_attempt_at TEXT;

-- version: 4
-- Retention (dcmpurge(1)): the store file of an instance the cloud
-- confirmed may be removed; the row stays, with purged_at set (ISO 8601
-- UTC) before the file is unlinked, so no row points at a missing file
-- unknowingly.  NULL: the file is held.
ALTER TABLE instances ADD COLUMN purged_at TEXT;

-- version: 5
-- Query/Retrieve (qrscp's C-FIND): what keyed queries look up.  Patient
-- ID is served by the UNIQUE (patient_id, patient_name) index, UIDs by
-- their UNIQUE columns; these add names, dates, and the instances of a
-- series in instance-number order for C-MOVE / C-GET.
CREATE INDEX patients_name ON patients(patient_name);
CREATE INDEX studies_date ON studies(study_date, study_time);
CREATE INDEX series_study_modality ON series(study_ref, modality);
CREATE INDEX instances_series_number ON instances(series_ref, instance_number);

-- version: 6
-- Storage Commitment Push Model (qrscp, PS3.4 annex J): every N-ACTION
-- request, persisted before it is answered, and its N-EVENT-REPORT's fate.
-- These two tables are the only ones qrscp writes.
--
-- state: PENDING (no report delivered yet), REPORTED (the requester
-- answered our N-EVENT-REPORT with success: event_type 1 all committed,
-- 2 some failed; reported_at says when).  A PENDING request is claimed by
-- one process at a time (claimed_by, a pid, until claimed_until, epoch
-- seconds) so two never send the same report at once; a claim whose
-- process is gone is taken over.  attempts counts reports tried on a new
-- association; next_attempt_at (epoch seconds) is when the next may be;
-- last_error says why the last one failed.
--
-- A Transaction UID seen again from the same calling AE with the same
-- references is the same request sent again: it is answered again.  Any
-- other reuse (another AE, other references) is recorded with duplicate_of
-- set and its report fails every reference with 0131 (duplicate
-- transaction UID), as PS3.4 J.3.3 forbids reusing one.
CREATE TABLE commitment_requests (
	id			INTEGER PRIMARY KEY,
	transaction_uid		TEXT NOT NULL,
	calling_aet		TEXT NOT NULL,
	called_aet		TEXT NOT NULL,
	peer_address		TEXT,
	received_at		TEXT NOT NULL,
	duplicate_of		INTEGER REFERENCES commitment_requests(id),
	state			TEXT NOT NULL DEFAULT 'PENDING'
				CHECK (state IN ('PENDING', 'REPORTED')),
	attempts		INTEGER NOT NULL DEFAULT 0,
	last_error		TEXT,
	next_attempt_at		INTEGER NOT NULL DEFAULT 0,
	claimed_by		INTEGER,
	claimed_until		INTEGER,
	event_type		INTEGER,
	reported_at		TEXT
);
CREATE INDEX commitment_requests_uid ON commitment_requests(transaction_uid);
CREATE INDEX commitment_requests_pending
	ON commitment_requests(state, next_attempt_at);

-- The (SOP class, SOP instance) pairs a request references, in its order;
-- failure_reason is what the last report said (NULL: committed).
CREATE TABLE commitment_items (
	request_ref		INTEGER NOT NULL REFERENCES commitment_requests(id),
	seq			INTEGER NOT NULL,
	sop_class_uid		TEXT NOT NULL,
	sop_instance_uid	TEXT NOT NULL,
	failure_reason		INTEGER,
	PRIMARY KEY (request_ref, seq)
) WITHOUT ROWID;

-- version: 7
-- Retention and scrub (dcmpurge(1), dcmindex --verify).
-- purge_pending: objects whose rows dcmpurge marked purged and whose file
-- it has not unlinked yet; written in the same transaction as purged_at,
-- emptied after the unlink, so a restart finishes exactly the half-done
-- work.  verify_runs / verify_problems: what the last scrub found (an
-- object that now verifies leaves verify_problems); the scrub never
-- changes or removes an object.
CREATE TABLE purge_pending (
	object_hash	TEXT PRIMARY KEY,
	marked_at	TEXT NOT NULL
);
CREATE INDEX instances_held_by_age ON instances(received_at, id)
	WHERE purged_at IS NULL;
CREATE INDEX instances_object ON instances(object_hash);

CREATE TABLE verify_runs (
	id		INTEGER PRIMARY KEY,
	started_at	TEXT NOT NULL,
	finished_at	TEXT,		-- NULL: interrupted or still running
	objects		INTEGER NOT NULL DEFAULT 0,
	bytes		INTEGER NOT NULL DEFAULT 0,
	failures	INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE verify_problems (
	object_hash	TEXT PRIMARY KEY,
	problem		TEXT NOT NULL,	-- 'missing' or 'mismatch'
	detail		TEXT,
	found_at	TEXT NOT NULL
);

-- version: 8
-- Uploads an operator can see and steer (gatewayctl(8) uploads, waiting,
-- assign, release, resend --held).  upload_status gains:
--   HELD       not queued: the cloud was not configured (no
--              CLOUD_API_ENDPOINT) when the image was indexed, or
--              `dcmindex --reindex` rebuilt it; kept until
--              `gatewayctl resend --held` queues it;
--   UNMATCHED  no worklist item with a source message id has its
--              accession number (nor the one assigned by hand): relaysend
--              looks again every minute, and sends it once there is one;
--   RELEASED   an operator gave up the wait (`gatewayctl release`): not
--              uploaded, kept; `gatewayctl resend` sends it again.
-- studies.upload_accession_number: the worklist item an operator named
-- for the study (`gatewayctl assign`): its images and their events go
-- under that item's source message id, whatever accession number they
-- carry.  studies.upload_released_at: when an operator released it; its
-- waiting jobs, and any later ones, are dropped, their images RELEASED.
-- Neither ever changes an image.  dcmpurge still frees only COMPLETE ones.
ALTER TABLE studies ADD COLUMN upload_accession_number TEXT;
ALTER TABLE studies ADD COLUMN upload_released_at TEXT;
CREATE INDEX instances_unsent ON instances(upload_status)
	WHERE upload_status <> 'COMPLETE';

-- version: 9
-- Events held back (gatewayctl(8) resend --held, relaysend(1)).
-- event_held_at: when dcmthumb made the image's preview while the
-- relay's events were off, so that no study.image_received job was
-- queued for it; `gatewayctl resend --held` queues it once events are
-- configured, then sets this back to NULL.  NULL: queued, or not for the
-- cloud (LOCAL), or no preview made yet.  Images indexed before this
-- version are not marked.
ALTER TABLE instances ADD COLUMN event_held_at TEXT;
CREATE INDEX instances_event_held ON instances(event_held_at)
	WHERE event_held_at IS NOT NULL;

-- views
-- The views keep the seed's names (stored_instances, study_summary,
-- series_summary) so its sqlite3 one-liners still work.  This section is
-- not a version: db_migrate() runs it after the last version it applies,
-- in the same transaction, so each view is written once, as it is now,
-- and a version only changes tables.
DROP VIEW IF EXISTS stored_instances;
DROP VIEW IF EXISTS series_summary;
DROP VIEW IF EXISTS study_summary;
DROP VIEW IF EXISTS storage_stats;
DROP VIEW IF EXISTS verify_failures;

CREATE VIEW stored_instances AS
SELECT
	i.sop_instance_uid,
	o.storage_path,
	o.size			AS file_size,
	o.hash			AS storage_hash,
	p.patient_id,
	p.patient_name,
	st.study_instance_uid,
	se.series_instance_uid,
	st.accession_number,
	st.study_date,
	st.study_time,
	st.study_description,
	se.series_number,
	se.series_description,
	se.modality,
	i.instance_number,
	i.view_position,
	i.laterality,
	i.organ_dose,
	i.entrance_dose_in_mgy,
	i.kvp,
	i.exposure_in_uas,
	i.anode_target_material,
	i.filter_material,
	i.filter_thickness,
	o.transfer_syntax_uid,
	i.sop_class_uid,
	i.rows,
	i.columns,
	i.received_at,
	i.source_aet,
	i.status,
	i.thumbnail_status,
	i.upload_status,
	i.upload_attempt_count,
	i.upload_error,
	i.uploaded_at,
	i.upload_next_attempt_at,
	i.purged_at,
	CASE WHEN i.purged_at IS NULL THEN 'store'
	     WHEN i.upload_status = 'COMPLETE' THEN 'cloud'
	     ELSE 'purged' END	AS image_location
FROM instances i
JOIN objects o	 ON o.hash = i.object_hash
JOIN series se	 ON se.id = i.series_ref
JOIN studies st	 ON st.id = se.study_ref
JOIN patients p	 ON p.id = st.patient_ref;

CREATE VIEW series_summary AS
SELECT
	se.series_instance_uid,
	st.study_instance_uid,
	se.modality,
	se.series_number,
	se.series_description,
	count(i.id)		AS instance_count,
	coalesce(sum(o.size), 0) AS total_size,
	min(i.received_at)	AS first_received,
	max(i.received_at)	AS last_received
FROM series se
JOIN studies st		ON st.id = se.study_ref
LEFT JOIN instances i	ON i.series_ref = se.id
LEFT JOIN objects o	ON o.hash = i.object_hash
GROUP BY se.id;

CREATE VIEW study_summary AS
SELECT
	st.study_instance_uid,
	p.patient_id,
	p.patient_name,
	st.accession_number,
	st.study_date,
	st.study_time,
	st.study_description,
	(SELECT group_concat(DISTINCT s2.modality) FROM series s2
	  WHERE s2.study_ref = st.id)				AS modalities,
	(SELECT count(*) FROM series s2 WHERE s2.study_ref = st.id) AS series_count,
	count(i.id)		AS instance_count,
	coalesce(sum(o.size), 0) AS total_size,
	min(i.received_at)	AS first_received,
	max(i.received_at)	AS last_received
FROM studies st
JOIN patients p		ON p.id = st.patient_ref
LEFT JOIN series se	ON se.study_ref = st.id
LEFT JOIN instances i	ON i.series_ref = se.id
LEFT JOIN objects o	ON o.hash = i.object_hash
GROUP BY st.id;

-- Storage statistics, computed when asked.
CREATE VIEW storage_stats AS
SELECT
	(SELECT count(*) FROM patients)		AS patient_count,
	(SELECT count(*) FROM studies)		AS study_count,
	(SELECT count(*) FROM series)		AS series_count,
	(SELECT count(*) FROM instances)	AS instance_count,
	(SELECT count(*) FROM objects)		AS object_count,
	(SELECT coalesce(sum(size), 0) FROM objects) AS total_bytes,
	(SELECT count(*) FROM receipts)		AS receipt_count,
	(SELECT min(first_received_at) FROM objects) AS first_received,
	(SELECT max(received_at) FROM receipts)	AS last_received;

CREATE VIEW verify_failures AS
SELECT
	v.object_hash,
	v.problem,
	v.detail,
	v.found_at,
	o.storage_path,
	o.size			AS file_size,
	o.sop_instance_uid
FROM verify_problems v
LEFT JOIN objects o ON o.hash = v.object_hash;
