/*
 * qr: Query/Retrieve and Storage Commitment over pacs.db and the store.
 *
 * Layer 3.  The one public header of lib/qr/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: qr.
 */
#ifndef GW_QR_H
#define GW_QR_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "archive/archive.h"
#include "dicomnet/dicomnet.h"

/*
 * qr: Query/Retrieve and Storage Commitment over pacs.db and the store,
 * the services qrscp(8) offers (PS3.4 annexes C and J).
 *
 * Modules:
 * - qr_find.c: C-FIND matching (PS3.4 C.2.2.2) for the Patient Root and
 *   Study Root models, levels PATIENT / STUDY / SERIES / IMAGE, as SQL over
 *   pacs.db; and the instances a C-MOVE / C-GET identifier names.
 * - qr_move.c: C-MOVE (a sub-association to a destination from
 *   QR_DESTINATIONS) and C-GET (C-STORE on the same association).
 * - qr_commit.c: Storage Commitment Push Model (N-ACTION, N-EVENT-REPORT),
 *   requests persisted in pacs.db before they are answered.
 * - qr_dest.c: the QR_DESTINATIONS file ("AE host port [tls]" lines).
 *
 * pacs.db is read only, except for qrscp's own commitment table.  Nothing
 * here logs patient data: UIDs, accession numbers, AE titles and counts.
 */

#define QR_SOP_PATIENT_FIND	"1.2.840.10008.5.1.4.1.2.1.1"
#define QR_SOP_PATIENT_MOVE	"1.2.840.10008.5.1.4.1.2.1.2"
#define QR_SOP_PATIENT_GET	"1.2.840.10008.5.1.4.1.2.1.3"
#define QR_SOP_STUDY_FIND	"1.2.840.10008.5.1.4.1.2.2.1"
#define QR_SOP_STUDY_MOVE	"1.2.840.10008.5.1.4.1.2.2.2"
#define QR_SOP_STUDY_GET	"1.2.840.10008.5.1.4.1.2.2.3"
#define QR_SOP_COMMITMENT	"1.2.840.10008.1.20.1"
#define QR_COMMITMENT_INSTANCE	"1.2.840.10008.1.20.1.1"	/* well-known */

enum qr_root {
	QR_ROOT_PATIENT,
	QR_ROOT_STUDY,
};

/* Error codes in struct err.code (errno values otherwise). */
enum {
	QR_E_IDENTIFIER = 3000,	/* the identifier is wrong (status A900) */
	QR_E_LEVEL,		/* no or unknown Query/Retrieve Level (C000 family) */
};

/* --- qr_find.c --- */

/*
 * Matching (PS3.4 C.2.2.2), as dcmtk's dcmqrscp does where the standard
 * leaves a choice: single value, universal (empty, or only '*'),
 * wildcard ('*', '?': one character) for text keys, range for dates and
 * times ("A-B", "-B", "A-"), list of UIDs.  StudyDate and StudyTime are
 * matched separately, as C.2.2.2.5 asks in the absence of Extended
 * Negotiation; as one date-time range (both ranges) only when options say
 * the association negotiated combined date-time matching.  Case sensitive, Patient's
 * Name included.  A key with a value matches no entity whose stored value
 * is empty.
 *
 * Hierarchical search (C.4.1.3.1): the keys of the query's level are
 * matched (in the Study Root model, the patient keys at STUDY too), and
 * of the levels above only the unique keys.  Deliberately lenient where
 * dcmqrscp refuses: a unique key missing above the level matches any
 * value, other keys above the level are returned filled, not matched, and
 * a UID key of only '*' is universal.  Keys below the level are returned
 * empty.
 *
 * Responses: every requested key, its value from the index or empty
 * (attributes the index lacks are answered empty, never invented), plus
 * (0008,0052), the unique keys of the level and the levels above, and
 * (0008,0054) when options name a Retrieve AE Title.  Sequence keys come
 * back as empty sequences.
 *
 * Character sets: the request's values arrive decoded to UTF-8 (lib/dicom/dicom)
 * and the index is UTF-8.  Each response's charset is NULL when all its
 * text is ASCII, "ISO_IR 100" when the request came in ISO_IR 100 and all
 * of it fits Latin-1, "ISO_IR 192" otherwise; pass it to
 * dcm_build_encode().
 *
 * Bad requests: no, or an unknown, (0008,0052), or PATIENT in the Study
 * Root model: QR_E_LEVEL.  A malformed key value (a date that is not one,
 * a UID with wildcards, an integer key that is not one, a value over 1024
 * bytes, text that cannot be decoded): QR_E_IDENTIFIER naming the tag,
 * never the value.
 */

/*
 * One match: the response identifier, and the Specific Character Set its
 * text is to be encoded in (NULL, "ISO_IR 100" or "ISO_IR 192": see
 * above).  Return non-zero to stop (cancel, send failure).
 */
typedef int (*qr_match_fn)(void *arg, struct dcm_builder *response,
    const char *charset);

/* What a C-FIND answers beyond the index, and what was negotiated. */
struct qr_find_options {
	const char *retrieve_aet;	/* (0008,0054) of every response */
	int combined_datetime;		/* SOP Class Extended Negotiation,
					 * byte 2 (PS3.4 C.5.1.1) accepted */
};

/*
 * C-FIND: match identifier (the request's data set, parsed) against
 * pacs.db at its (0008,0052) level for the given information model, and
 * call fn once per match with the return keys filled.  Returns the number
 * of matches (>= 0; fewer when fn stopped it), or -1 with e set
 * (QR_E_IDENTIFIER / QR_E_LEVEL for a bad request, else a database error).
 * Matches stream from SQLite in no particular order; nothing is kept.
 */
int qr_find(sqlite3 *db, enum qr_root root, const struct dcm *identifier,
    qr_match_fn fn, void *arg, struct err *e);

/* The same with options (opt may be NULL). */
int qr_find_with(sqlite3 *db, enum qr_root root,
    const struct dcm *identifier, const struct qr_find_options *opt,
    qr_match_fn fn, void *arg, struct err *e);

/* One stored instance, as a retrieval needs it. */
struct qr_instance {
	char sop_instance_uid[PACS_UI];
	char sop_class_uid[PACS_UI];
	char transfer_syntax_uid[PACS_UI];
	char study_instance_uid[PACS_UI];
	char series_instance_uid[PACS_UI];
	char hash[65];			/* object name: SHA-256 hex */
	long long size;
	int purged;			/* retention removed its file
					 * (instances.purged_at): it cannot
					 * be sent, count it as failed */
};

typedef int (*qr_instance_fn)(void *arg, const struct qr_instance *in);

/*
 * C-MOVE / C-GET: the instances a retrieve identifier names (its level and
 * the unique keys at and above it, PS3.4 C.4.2.2.1; a list of UIDs is
 * allowed), in study, series, instance-number order.  The unique key of
 * the level must have a value (QR_E_IDENTIFIER otherwise: an empty one
 * would retrieve everything); wildcards are refused; other keys are
 * ignored.  fn is called once per instance; non-zero stops.  Returns the
 * number of instances, or -1 with e set as for qr_find.
 */
int qr_instances(sqlite3 *db, enum qr_root root, const struct dcm *identifier,
    qr_instance_fn fn, void *arg, struct err *e);

/* --- qr_dest.c --- */

#define QR_MAX_DESTINATIONS	256

struct qr_destination {
	char aet[17];
	char host[256];
	int port;
	int tls;		/* the line said "tls" */
};

struct qr_destinations {
	struct qr_destination d[QR_MAX_DESTINATIONS];
	int n;
};

/*
 * Read a QR_DESTINATIONS file: one "AE host port [tls]" per line, '#'
 * comments and blank lines allowed.  A missing file (path NULL or "") is
 * an empty list.  -1 with e naming the line on a bad one.
 */
int qr_destinations_load(struct qr_destinations *ds, const char *path,
    struct err *e);

/* The destination with this AE title, or NULL. */
const struct qr_destination *qr_destination_find(
    const struct qr_destinations *ds, const char *aet);

/* --- serving (bin/qrscp.c calls these in the association's process) --- */

/* Storage SOP classes a C-GET requestor may take the SCP role for, and
 * the transfer syntaxes we may send in (NULL-ended lists). */
extern const char *const qr_storage_classes[];
extern const char *const qr_transfer_syntaxes[];

/* What qrscp was told, shared by its association processes. */
struct qr_settings {
	struct config cfg;		/* paths, AE titles */
	struct qr_destinations dests;
	const char *destinations_path;
	/* TLS to "tls" destinations: verify against tls_ca ("" the system's
	 * CAs), offer tls_cert/tls_key (the server's, GATEWAY_TLS_*). */
	const char *tls_ca, *tls_cert, *tls_key;
};

struct scp_session;		/* lib/dicomnet/dicomnet.h */

/* One association being served. */
struct qr_session {
	struct scp_session *s;		/* the association, its peer */
	const struct qr_settings *set;
	sqlite3 *db;			/* pacs.db, opened on first use */
	struct store store;
	int store_open;
};

/* Open pacs.db and the store for x if not yet done (0, or -1 with e). */
int qr_session_open(struct qr_session *x, struct err *e);
void qr_session_close(struct qr_session *x);

/* Parse a request's identifier on its context's transfer syntax; -1
 * (logged) when it cannot be parsed. */
int qr_parse_identifier(struct qr_session *x, const struct dimse_msg *m,
    struct dcm **out);

/* The failure status for a request qr_find/qr_instances refused. */
uint16_t qr_refusal_status(const struct err *e);

/* Each serves one request message to its final response.  0 to go on
 * with the association, -1 when it is gone (the caller stops). */
int qr_serve_find(struct qr_session *x, const struct dimse_msg *m,
    enum qr_root root);
int qr_serve_move(struct qr_session *x, const struct dimse_msg *m,
    enum qr_root root);
int qr_serve_get(struct qr_session *x, const struct dimse_msg *m,
    enum qr_root root);
int qr_serve_commit(struct qr_session *x, const struct dimse_msg *m);

/*
 * Commitment requests left unanswered (qrscp was killed between N-ACTION
 * and N-EVENT-REPORT, or the requester was unreachable): answer them on
 * a new association to the requester (its address from QR_DESTINATIONS).
 * Called by qrscp's parent at start and then periodically, in a child
 * process of its own.  Returns the number answered, or -1 with e set.
 */
int qr_commit_resume(const struct qr_settings *set, struct err *e);

/* --- qr_status.c: qrscp as gatewayctl status and the health report see
 * it, and its one writer --- */

struct qr_status {
	int present;		/* run/qr.state exists: qrscp was started */
	int running;		/* ... and its pid is alive */
	long pid;
	char aet[17];
	int port;
	int associations;	/* open now */
	int moves;		/* C-MOVE/C-GET in progress (run/qr-move.PID) */
	long pending_commitments;	/* -1: unknown (no pacs.db) */
};

/* qrscp's parent: run/qr.state (AE title, port, associations open, its
 * pid), replaced whole (lib/base runstate). */
int qr_status_write(const char *data_dir, const char *aet, int port,
    int associations, struct err *e);

/* Read run/qr.state, run/qr-move.* and pacs.db's commitment table
 * (read-only).  A run/ closed to this user reads as not started. */
int qr_status_read(const struct config *c, struct qr_status *st,
    struct err *e);

/* The status in one line, as qrscp --status and gatewayctl status print
 * it after "qrscp: ": "running (pid 812) AE SCREENING_QR port 4246, 1
 * association, 0 retrievals in progress, commitments pending: 0", or
 * "not running (AE …, port …)" / "not started (…)". */
void qr_status_line(const struct qr_status *st, char *out, size_t outsz);

/* The number of commitment requests not yet reported, into *pending. */
int qr_commit_pending(sqlite3 *db, long *pending, struct err *e);

#endif
