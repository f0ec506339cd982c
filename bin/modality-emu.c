/*
 * modality-emu: a mammography modality that drives the gateway.
 *
 * Queries the worklist (C-FIND MWL), and for each SCHEDULED item plays an
 * exam: N-CREATE MPPS IN PROGRESS, C-STORE of the screening views to the
 * PACS, N-SET COMPLETED (or DISCONTINUED).  See man/modality-emu.1.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "dicomnet/dicomnet.h"
#include "emu/emu.h"
#include "worklist/worklist.h"

#define MWL_FIND	"1.2.840.10008.5.1.4.31"
#define MPPS		"1.2.840.10008.3.1.2.3.3"
#define TS_JPEG_LL	"1.2.840.10008.1.2.4.70"
#define TS_JPEG_LS	"1.2.840.10008.1.2.4.80"
#define MAX_VIEWS	16
#define F		64	/* a worklist field */

#define TAG(g, e)	DCM_TAG(0x##g, 0x##e)
#define T_SPS		TAG(0040, 0100)

enum ts_choice { TS_EXPLICIT, TS_JPEG, TS_JPEGLS };

struct options {
	const char *host, *calling_aet;
	const char *patient_name, *accession, *modality;
	char date[16];
	struct mammo_view views[MAX_VIEWS];
	int nviews, rows, cols, frames, count, discontinue, list;
	enum ts_choice ts;
};

struct wl_item {
	char patient_name[256], patient_id[F], birth_date[F], sex[F];
	char accession[F], study_uid[F], study_desc[F];
	char rp_id[F], rp_desc[F], sps_id[F], sps_desc[F], sps_status[F];
	char modality[F], sps_date[F];
};

struct item_list {
	struct wl_item *v;
	size_t n, cap;
};

/* One run: the configuration and the next DIMSE message ID. */
struct run {
	const struct options *o;
	struct config cfg;
	uint16_t message_id;
};

/* What one exam produced, for the N-SET.  Each view is a series of its
 * own, as the production emulator makes them: the Manage API refuses
 * an image whose laterality or view differs from its series' first. */
struct exam_state {
	char mpps_uid[MAMMO_UID_MAX];
	char series_uids[MAX_VIEWS][MAMMO_UID_MAX];
	int nseries;
	char date[16], time[16];
	char (*sop_uids)[MAMMO_UID_MAX];
	const char *sop_class;	/* MG, or BTO with --frames */
	int nstored, nplanned;
	char failure[256];	/* why storing stopped, "" when it did not */
};

static const char *const ts_uncompressed[] = { DCM_TS_EXPLICIT_LE,
    DCM_TS_IMPLICIT_LE, NULL };

static void
usage(FILE *f)
{
	fprintf(f, "usage: modality-emu [--host host] [--aet title] "
	    "[--patient-name pattern]\n"
	    "           [--accession number] [--date YYYYMMDD] "
	    "[--modality MG]\n"
	    "           [--views RCC,LCC,RMLO,LMLO] "
	    "[--size small|full|ROWSxCOLS] [--frames n]\n"
	    "           [--count n] [--transfer-syntax "
	    "explicit|jpeg-lossless|jpeg-ls]\n"
	    "           [--discontinue | --list]\n"
	    "       modality-emu --help | --version\n"
	    "\n"
	    "Plays a mammography modality against the gateway: queries the\n"
	    "worklist, then per item MPPS IN PROGRESS, the images (C-STORE) and\n"
	    "MPPS COMPLETED.\n"
	    "\n"
	    "  --host host          where the gateway runs (default 127.0.0.1)\n"
	    "  --aet title          our calling AE title (default MODALITY_EMU)\n"
	    "  --patient-name pat   match Patient Name (wildcards * and ?)\n"
	    "  --accession number   match Accession Number (any status)\n"
	    "  --date YYYYMMDD      match the scheduled date (default today, the\n"
	    "                       local day of WORKLIST_TIMEZONE)\n"
	    "  --modality MG        match Modality (default MG)\n"
	    "  --views list         comma-separated from RCC, LCC, RMLO, LMLO\n"
	    "                       (default all four)\n"
	    "  --size S             small (512x400), full (3328x2560, default)\n"
	    "                       or ROWSxCOLS (16 to 8192 each)\n"
	    "  --frames n           above 1: tomosynthesis objects of n slices\n"
	    "  --count n            images of each view per exam (default 1)\n"
	    "  --transfer-syntax T  explicit (default), jpeg-lossless or jpeg-ls\n"
	    "  --discontinue        end each exam with MPPS DISCONTINUED\n"
	    "  --list               print the items that would be played, no more\n"
	    "  -h, --help           this help\n"
	    "  --version            print the version\n"
	    "\n"
	    "Environment: GATEWAY_ENV_FILE, WORKLIST_AET, WORKLIST_PORT, "
	    "PACS_AET,\nPACS_PORT, TMPDIR, LOG_LEVEL.  See modality-emu(1).\n");
}

static const char *
q(const char *s, char *buf, unsigned sz)
{
	return log_quote(s, buf, sz);
}

/* --- association set-up, with the reason when it fails --- */

static int
open_assoc(struct run *r, const char *role, const char *called, int port,
    const char *sop_class, const char *const *ts, struct ul_assoc **out)
{
	struct ul_proposal p = { sop_class, ts, 0 };
	struct ul_config cfg = { .artim_ms = 30000, .idle_ms = 120000 };
	struct err e = { 0 };
	char qe[600];

	if (ul_connect(out, r->o->host, port, r->o->calling_aet, called, &p,
	    1, &cfg, &e) == 0) {
		if ((*out)->ctx[0].result == UL_CTX_ACCEPTED)
			return EX_OK;
		log_error("presentation context rejected", "peer=%s:%d "
		    "called_aet=%s sop_class=%s result=%d", r->o->host, port,
		    called, sop_class, (*out)->ctx[0].result);
		ul_abort(*out, 0, 0);
		ul_free(*out);
		*out = NULL;
		return EX_PROTOCOL;
	}
	if (*out == NULL) {
		char msg[64];

		snprintf(msg, sizeof msg, "cannot connect to the %s SCP",
		    role);
		log_error(msg, "role=%s peer=%s:%d called_aet=%s "
		    "error=%s", role, r->o->host, port, called,
		    q(e.msg, qe, sizeof qe));
		return EX_UNAVAILABLE;
	}
	if (e.code == UL_E_REJECTED) {
		char why[128];

		log_error("association rejected", "role=%s peer=%s:%d "
		    "called_aet=%s calling_aet=%s why=%s result=%d source=%d "
		    "reason=%d", role, r->o->host, port, called,
		    r->o->calling_aet, q(scu_reject_reason(&(*out)->reject),
		    why, sizeof why), (*out)->reject.result,
		    (*out)->reject.source, (*out)->reject.reason);
		ul_free(*out);
		*out = NULL;
		return EX_NOPERM;
	}
	log_error("association failed", "role=%s peer=%s:%d called_aet=%s "
	    "error=%s", role, r->o->host, port, called,
	    q(e.msg, qe, sizeof qe));
	ul_free(*out);
	*out = NULL;
	return EX_PROTOCOL;
}

static void
close_assoc(struct ul_assoc *a)
{
	struct err e = { 0 };

	if (scu_close(a, &e) == -1)
		log_warn("release failed", "error=\"%s\"", e.msg);
}

/* Send a request and wait for its response (C-FIND: the first one). */
static int
request(struct run *r, struct ul_assoc *a, struct dimse_cmd *rq,
    const uint8_t *data, size_t len, struct dimse_msg *rsp, struct err *e)
{
	rq->message_id = ++r->message_id;
	return scu_request(a, a->ctx[0].id, rq, data, len, rsp, e);
}

/* --- the worklist query --- */

static int
has_non_ascii(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

static int
put(struct dcm_builder *b, uint32_t tag, const char *v, struct err *e)
{
	if (v == NULL || v[0] == '\0')
		return dcm_build_empty(b, tag, NULL, e);
	return dcm_build_string(b, tag, NULL, v, e);
}

static int
build_query(const struct options *o, struct dcm_builder *b, struct err *e)
{
	return put(b, TAG(0010, 0010), o->patient_name, e) == -1 ||
	    put(b, TAG(0010, 0020), "", e) == -1 ||
	    put(b, TAG(0010, 0030), "", e) == -1 ||
	    put(b, TAG(0010, 0040), "", e) == -1 ||
	    put(b, TAG(0008, 0050), o->accession, e) == -1 ||
	    put(b, TAG(0008, 1030), "", e) == -1 ||
	    put(b, TAG(0020, 000d), "", e) == -1 ||
	    put(b, TAG(0032, 1060), "", e) == -1 ||
	    put(b, TAG(0040, 1001), "", e) == -1 ||
	    dcm_build_sequence_begin(b, T_SPS, e) == -1 ||
	    dcm_build_item_begin(b, e) == -1 ||
	    put(b, TAG(0008, 0060), o->modality, e) == -1 ||
	    put(b, TAG(0040, 0001), "", e) == -1 ||
	    put(b, TAG(0040, 0002), o->date, e) == -1 ||
	    put(b, TAG(0040, 0003), "", e) == -1 ||
	    put(b, TAG(0040, 0007), "", e) == -1 ||
	    put(b, TAG(0040, 0009), "", e) == -1 ||
	    put(b, TAG(0040, 0020), "", e) == -1 ||
	    dcm_build_item_end(b, e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ? -1 : 0;
}

static void
get(const struct dcm *d, const struct dcm_item *it, uint32_t tag, char *out,
    size_t outsz)
{
	if (dcm_get_string(d, it, tag, 0, out, outsz, NULL) < 0)
		out[0] = '\0';
}

static int
add_item(struct item_list *l, const struct dcm *d)
{
	const struct dcm_elem *sq = dcm_find(d, NULL, T_SPS);
	const struct dcm_item *sps = NULL;
	struct wl_item *x;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct wl_item *nv = reallocarray(l->v, cap, sizeof *nv);

		if (nv == NULL)
			return -1;
		l->v = nv;
		l->cap = cap;
	}
	x = &l->v[l->n++];
	memset(x, 0, sizeof *x);
	get(d, NULL, TAG(0010, 0010), x->patient_name, sizeof x->patient_name);
	get(d, NULL, TAG(0010, 0020), x->patient_id, F);
	get(d, NULL, TAG(0010, 0030), x->birth_date, F);
	get(d, NULL, TAG(0010, 0040), x->sex, F);
	get(d, NULL, TAG(0008, 0050), x->accession, F);
	get(d, NULL, TAG(0008, 1030), x->study_desc, F);
	get(d, NULL, TAG(0020, 000d), x->study_uid, F);
	get(d, NULL, TAG(0032, 1060), x->rp_desc, F);
	get(d, NULL, TAG(0040, 1001), x->rp_id, F);
	if (sq != NULL && dcm_item_count(d, sq) > 0)
		sps = dcm_item_at(d, sq, 0);
	if (sps != NULL) {
		get(d, sps, TAG(0008, 0060), x->modality, F);
		get(d, sps, TAG(0040, 0002), x->sps_date, F);
		get(d, sps, TAG(0040, 0007), x->sps_desc, F);
		get(d, sps, TAG(0040, 0009), x->sps_id, F);
		get(d, sps, TAG(0040, 0020), x->sps_status, F);
	}
	return 0;
}

/* Take the C-FIND responses until the final one. */
static int
find_responses(struct ul_assoc *a, struct dimse_msg *m, struct item_list *l,
    struct err *e)
{
	const char *ts = a->ctx[0].transfer_syntax;
	struct dcm *d;
	int k;

	for (;;) {
		uint16_t st = m->cmd.status;

		if (st != DIMSE_PENDING && st != DIMSE_PENDING_WARNING) {
			dimse_msg_free(m);
			if (st != DIMSE_SUCCESS)
				return err_set(e, st, "C-FIND failed with "
				    "status 0x%04X %s", st,
				    m->cmd.error_comment);
			return 0;
		}
		if (m->data != NULL) {
			if (dcm_parse_dataset(m->data, m->datalen, ts, 0, &d,
			    e) == -1) {
				dimse_msg_free(m);
				return err_wrap(e, "C-FIND response");
			}
			k = add_item(l, d);
			dcm_free(d);
			if (k == -1) {
				dimse_msg_free(m);
				return err_set(e, ENOMEM, "out of memory");
			}
		}
		dimse_msg_free(m);
		k = dimse_recv(a, m, e);
		if (k != UL_MESSAGE || m->cmd.command_field !=
		    DIMSE_C_FIND_RSP) {
			if (k == UL_MESSAGE)
				dimse_msg_free(m);
			return k == -1 ? -1 : err_set(e, UL_E_PROTOCOL,
			    "the C-FIND ended without a final response");
		}
	}
}

static int
query_worklist(struct run *r, struct item_list *l)
{
	struct ul_assoc *a;
	struct dcm_builder *b;
	struct dimse_cmd rq = { 0 };
	struct dimse_msg m;
	struct err e = { 0 };
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	if ((rc = open_assoc(r, "worklist", r->cfg.worklist_aet,
	    r->cfg.worklist_port, MWL_FIND, ts_uncompressed, &a)) != EX_OK)
		return rc;
	if ((b = dcm_build_new()) == NULL) {
		ul_free(a);
		return EX_OSERR;
	}
	rq.command_field = DIMSE_C_FIND_RQ;
	snprintf(rq.affected_sop_class, DIMSE_UID_MAX, "%s", MWL_FIND);
	rc = build_query(r->o, b, &e);
	if (rc == 0)
		rc = dcm_build_encode(b, a->ctx[0].transfer_syntax,
		    has_non_ascii(r->o->patient_name) ? "ISO_IR 192" : NULL,
		    &buf, &len, &e);
	dcm_build_free(b);
	if (rc == 0 && (rc = request(r, a, &rq, buf, len, &m, &e)) == 0)
		rc = find_responses(a, &m, l, &e);
	free(buf);
	if (rc == -1) {
		log_error("worklist query failed", "peer=%s:%d error=\"%s\"",
		    r->o->host, r->cfg.worklist_port, e.msg);
		ul_abort(a, 0, 0);
		ul_free(a);
		return EX_PROTOCOL;
	}
	close_assoc(a);
	return EX_OK;
}

/* --- MPPS --- */

static int
build_create(const struct run *r, const struct wl_item *x,
    const struct exam_state *s, struct dcm_builder *b, struct err *e)
{
	return dcm_build_sequence_begin(b, TAG(0040, 0270), e) == -1 ||
	    dcm_build_item_begin(b, e) == -1 ||
	    put(b, TAG(0008, 0050), x->accession, e) == -1 ||
	    dcm_build_sequence_begin(b, TAG(0008, 1110), e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ||
	    put(b, TAG(0020, 000d), x->study_uid, e) == -1 ||
	    put(b, TAG(0032, 1060), x->rp_desc, e) == -1 ||
	    put(b, TAG(0040, 0007), x->sps_desc, e) == -1 ||
	    put(b, TAG(0040, 0009), x->sps_id, e) == -1 ||
	    put(b, TAG(0040, 1001), x->rp_id, e) == -1 ||
	    dcm_build_item_end(b, e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ||
	    put(b, TAG(0010, 0010), x->patient_name, e) == -1 ||
	    put(b, TAG(0010, 0020), x->patient_id, e) == -1 ||
	    put(b, TAG(0010, 0030), x->birth_date, e) == -1 ||
	    put(b, TAG(0010, 0040), x->sex, e) == -1 ||
	    put(b, TAG(0008, 0060), "MG", e) == -1 ||
	    put(b, TAG(0020, 0010), "1", e) == -1 ||
	    put(b, TAG(0040, 0241), r->o->calling_aet, e) == -1 ||
	    put(b, TAG(0040, 0242), "modality-emu", e) == -1 ||
	    put(b, TAG(0040, 0243), "", e) == -1 ||
	    put(b, TAG(0040, 0244), s->date, e) == -1 ||
	    put(b, TAG(0040, 0245), s->time, e) == -1 ||
	    put(b, TAG(0040, 0250), "", e) == -1 ||
	    put(b, TAG(0040, 0251), "", e) == -1 ||
	    put(b, TAG(0040, 0252), "IN PROGRESS", e) == -1 ||
	    put(b, TAG(0040, 0253), s->mpps_uid + 5, e) == -1 ||
	    put(b, TAG(0040, 0254), "Screening mammography", e) == -1 ||
	    put(b, TAG(0040, 0255), "", e) == -1 ||
	    dcm_build_sequence_begin(b, TAG(0008, 1032), e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ||
	    dcm_build_sequence_begin(b, TAG(0040, 0340), e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ? -1 : 0;
}

static int
build_series(const struct exam_state *s, struct dcm_builder *b,
    struct err *e)
{
	if (dcm_build_sequence_begin(b, TAG(0040, 0340), e) == -1)
		return -1;
	for (int v = 0; v < s->nseries; v++) {
		if (dcm_build_item_begin(b, e) == -1 ||
		    put(b, TAG(0008, 1050), "", e) == -1 ||
		    put(b, TAG(0008, 1070), "", e) == -1 ||
		    put(b, TAG(0018, 1030), "Screening mammography", e) == -1 ||
		    put(b, TAG(0020, 000e), s->series_uids[v], e) == -1 ||
		    put(b, TAG(0008, 103e), "Screening mammography", e) == -1 ||
		    put(b, TAG(0008, 0054), "", e) == -1 ||
		    dcm_build_sequence_begin(b, TAG(0008, 1140), e) == -1)
			return -1;
		/* image i is of view i % nseries (make_and_store) */
		for (int i = v; i < s->nstored; i += s->nseries)
			if (dcm_build_item_begin(b, e) == -1 ||
			    put(b, TAG(0008, 1150), s->sop_class, e) == -1 ||
			    put(b, TAG(0008, 1155), s->sop_uids[i], e) == -1 ||
			    dcm_build_item_end(b, e) == -1)
				return -1;
		if (dcm_build_sequence_end(b, e) == -1 ||
		    dcm_build_sequence_begin(b, TAG(0040, 0220), e) == -1 ||
		    dcm_build_sequence_end(b, e) == -1 ||
		    dcm_build_item_end(b, e) == -1)
			return -1;
	}
	return dcm_build_sequence_end(b, e) == -1 ? -1 : 0;
}

static int
build_set(const struct exam_state *s, const char *status,
    struct dcm_builder *b, struct err *e)
{
	char date[16], time_[16];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%Y%m%d", &tm);
	strftime(time_, sizeof time_, "%H%M%S", &tm);
	if (put(b, TAG(0040, 0252), status, e) == -1 ||
	    put(b, TAG(0040, 0250), date, e) == -1 ||
	    put(b, TAG(0040, 0251), time_, e) == -1 ||
	    build_series(s, b, e) == -1)
		return -1;
	if (strcmp(status, "DISCONTINUED") != 0)
		return 0;
	/* PS3.16 CID 9300: 110514 "Incorrect worklist entry selected" is
	 * the operator's choice; a failure to store is 110513 "Equipment
	 * failure". */
	return put(b, TAG(0040, 0280), s->failure[0] ? s->failure :
	    "discontinued by the operator (--discontinue)", e) == -1 ||
	    dcm_build_sequence_begin(b, TAG(0040, 0281), e) == -1 ||
	    dcm_build_item_begin(b, e) == -1 ||
	    put(b, TAG(0008, 0100), s->failure[0] ? "110513" : "110514",
	    e) == -1 ||
	    put(b, TAG(0008, 0102), "DCM", e) == -1 ||
	    put(b, TAG(0008, 0104), s->failure[0] ? "Equipment failure" :
	    "Incorrect worklist entry selected", e) == -1 ||
	    dcm_build_item_end(b, e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ? -1 : 0;
}

/* Send an N-CREATE (status NULL) or an N-SET on its own association. */
static int
mpps_send(struct run *r, const struct wl_item *x, struct exam_state *s,
    const char *status)
{
	struct ul_assoc *a;
	struct dcm_builder *b;
	struct dimse_cmd rq = { 0 };
	struct dimse_msg m;
	struct err e = { 0 };
	const char *op = status == NULL ? "N-CREATE" : "N-SET";
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	if ((rc = open_assoc(r, "mpps", r->cfg.worklist_aet,
	    r->cfg.worklist_port, MPPS, ts_uncompressed, &a)) != EX_OK)
		return rc;
	if ((b = dcm_build_new()) == NULL) {
		ul_free(a);
		return EX_OSERR;
	}
	if (status == NULL) {
		rq.command_field = DIMSE_N_CREATE_RQ;
		snprintf(rq.affected_sop_class, DIMSE_UID_MAX, MPPS);
		snprintf(rq.affected_sop_instance, DIMSE_UID_MAX, "%s",
		    s->mpps_uid);
		rc = build_create(r, x, s, b, &e);
	} else {
		rq.command_field = DIMSE_N_SET_RQ;
		snprintf(rq.requested_sop_class, DIMSE_UID_MAX, MPPS);
		snprintf(rq.requested_sop_instance, DIMSE_UID_MAX, "%s",
		    s->mpps_uid);
		rc = build_set(s, status, b, &e);
	}
	if (rc == 0)
		rc = dcm_build_encode(b, a->ctx[0].transfer_syntax,
		    "ISO_IR 192", &buf, &len, &e);
	dcm_build_free(b);
	if (rc == 0)
		rc = request(r, a, &rq, buf, len, &m, &e);
	free(buf);
	if (rc == -1) {
		log_error("MPPS failed", "op=%s accession=%s error=\"%s\"",
		    op, x->accession, e.msg);
		ul_abort(a, 0, 0);
		ul_free(a);
		return EX_PROTOCOL;
	}
	dimse_msg_free(&m);
	close_assoc(a);
	if (m.cmd.status != DIMSE_SUCCESS) {
		char qc[160];

		log_error("MPPS refused", "op=%s accession=%s "
		    "mpps_sop_instance_uid=%s status=0x%04X comment=%s", op,
		    x->accession, s->mpps_uid, m.cmd.status,
		    q(m.cmd.error_comment, qc, sizeof qc));
		return EX_PROTOCOL;
	}
	log_info(status == NULL ? "MPPS created" : "MPPS set", "accession=%s "
	    "mpps_sop_instance_uid=%s status=\"%s\"", x->accession,
	    s->mpps_uid, status == NULL ? "IN PROGRESS" : status);
	return EX_OK;
}

/* --- images --- */

static int
run_encoder(const char *prog, const char *in, const char *out,
    struct err *e)
{
	pid_t pid;
	int st;

	if ((pid = fork()) == -1)
		return err_sys(e, "fork");
	if (pid == 0) {
		execlp(prog, prog, "-q", in, out, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return err_sys(e, "waitpid");
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return err_set(e, ENOENT, "%s not found: install dcmtk", prog);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return err_set(e, EIO, "%s failed (status %d)", prog, st);
	return 0;
}

static int
read_file(const char *path, uint8_t **out, size_t *outlen, struct err *e)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;
	uint8_t *buf;

	if (f == NULL)
		return err_sys(e, "open %s", path);
	if (fstat(fileno(f), &sb) == -1 || (buf = malloc((size_t)sb.st_size +
	    1)) == NULL) {
		fclose(f);
		return err_sys(e, "read %s", path);
	}
	if (fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
		free(buf);
		fclose(f);
		return err_sys(e, "read %s", path);
	}
	fclose(f);
	*out = buf;
	*outlen = (size_t)sb.st_size;
	return 0;
}

static int
write_file(int fd, const uint8_t *buf, size_t len, struct err *e)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return err_sys(e, "write");
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The bytes of the dataset after the meta group of a Part 10 file. */
static int
dataset_offset(const uint8_t *buf, size_t len, const char *want_ts,
    size_t *off, struct err *e)
{
	struct dcm *d;
	int rc;

	if (dcm_parse(buf, len, DCM_STOP_AT_PIXELS | DCM_REQUIRE_META, &d,
	    e) == -1)
		return -1;
	if (strcmp(dcm_transfer_syntax(d), want_ts) != 0)
		rc = err_set(e, EINVAL, "the encoder wrote transfer syntax "
		    "%s", dcm_transfer_syntax(d));
	else
		rc = scu_dataset_offset(d, off, e);
	dcm_free(d);
	return rc;
}

/* Compress through dcmtk's encoder on a temporary file. */
static int
compress(const struct options *o, struct dcm_builder *b, const char *sop,
    uint8_t **out, size_t *outlen, size_t *off, struct err *e)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	const char *prog = o->ts == TS_JPEG ? "dcmcjpeg" : "dcmcjpls";
	const char *ts = o->ts == TS_JPEG ? TS_JPEG_LL : TS_JPEG_LS;
	char in[4000], outp[4096];
	uint8_t *file;
	size_t len;
	int fd, rc;

	snprintf(in, sizeof in, "%s/modality-emu.XXXXXX", dir);
	if ((fd = mkstemp(in)) == -1)
		return err_sys(e, "mkstemp in %s", dir);
	snprintf(outp, sizeof outp, "%s.out", in);
	rc = dcm_build_encode_file(b, mammo_sop_class(o->frames), sop,
	    DCM_TS_EXPLICIT_LE, "ISO_IR 192", &file, &len, e);
	if (rc == 0) {
		rc = write_file(fd, file, len, e);
		free(file);
	}
	close(fd);
	if (rc == 0)
		rc = run_encoder(prog, in, outp, e);
	if (rc == 0)
		rc = read_file(outp, out, outlen, e);
	unlink(in);
	unlink(outp);
	if (rc == 0 && (rc = dataset_offset(*out, *outlen, ts, off, e)) == -1)
		free(*out);
	return rc;
}

static int
store_one(struct run *r, struct ul_assoc *a, struct dcm_builder *b,
    const char *sop, struct err *e)
{
	struct scu_store_rq rq = { mammo_sop_class(r->o->frames), sop, 0,
	    NULL, 0 };
	uint8_t *buf;
	size_t len, off = 0;
	uint16_t status;
	int rc;

	if (r->o->ts == TS_EXPLICIT)
		rc = dcm_build_encode(b, a->ctx[0].transfer_syntax,
		    "ISO_IR 192", &buf, &len, e);
	else
		rc = compress(r->o, b, sop, &buf, &len, &off, e);
	if (rc == -1)
		return -1;
	rq.message_id = ++r->message_id;
	rc = scu_store(a, a->ctx[0].id, &rq, buf + off, len - off, &status, e);
	free(buf);
	if (rc == -1 || !scu_store_ok(status))
		return -1;
	log_info("image stored", "sop_instance_uid=%s bytes=%zu status=0x%04X",
	    sop, len - off, status);
	return 0;
}

static int
make_and_store(struct run *r, struct ul_assoc *a, const struct mammo_exam *x,
    struct exam_state *s, int n, struct err *e)
{
	const struct options *o = r->o;
	struct mammo_exam view_x = *x;
	struct mammo_image img = { .exam = &view_x, .rows = o->rows,
	    .cols = o->cols, .frames = o->frames, .instance_number = n + 1,
	    .seed = (unsigned)n };
	struct dcm_builder *b;
	char *sop = s->sop_uids[n];
	int rc;

	img.view = o->views[n % o->nviews];
	view_x.series_instance_uid = s->series_uids[n % o->nviews];
	if (dcm_uid_new(sop, e) == -1)
		return -1;
	img.sop_instance_uid = sop;
	if (mammo_build(&img, &b, e) == -1)
		return -1;
	rc = store_one(r, a, b, sop, e);
	dcm_build_free(b);
	return rc;
}

/* The exit status for a failed image: the peer's fault or ours. */
static int
store_status(const struct err *e)
{
	if (e->code == ENOMEM)
		return EX_OSERR;
	if (e->code == EPIPE || e->code == ECONNRESET)
		return EX_UNAVAILABLE;
	if (e->code >= 0x100)	/* UL_E_*, or a C-STORE status */
		return EX_PROTOCOL;
	return EX_SOFTWARE;
}

static int
store_images(struct run *r, const struct wl_item *w, struct exam_state *s)
{
	const char *const jpeg[] = { TS_JPEG_LL, NULL };
	const char *const jpls[] = { TS_JPEG_LS, NULL };
	const char *const *ts = r->o->ts == TS_JPEG ? jpeg :
	    r->o->ts == TS_JPEGLS ? jpls : ts_uncompressed;
	struct mammo_exam x = {
		.patient_name = w->patient_name, .patient_id = w->patient_id,
		.birth_date = w->birth_date, .sex = w->sex,
		.accession_number = w->accession,
		.study_instance_uid = w->study_uid, .study_id = "1",
		.study_description = w->study_desc[0] ? w->study_desc :
		    "Screening mammography",
		.requested_procedure_id = w->rp_id, .study_date = s->date,
		.study_time = s->time, .series_instance_uid = s->series_uids[0],
		.mpps_sop_instance_uid = s->mpps_uid,
		.station_name = "MODALITY-EMU",
	};
	struct ul_assoc *a;
	struct err e = { 0 };
	int rc, n;

	if ((rc = open_assoc(r, "storage", r->cfg.pacs_aet, r->cfg.pacs_port,
	    mammo_sop_class(r->o->frames), ts, &a)) != EX_OK) {
		snprintf(s->failure, sizeof s->failure, "cannot open an "
		    "association with %s", r->cfg.pacs_aet);
		return rc;
	}
	for (n = 0; n < s->nplanned; n++) {
		if (make_and_store(r, a, &x, s, n, &e) == -1) {
			log_error("storing failed", "accession=%s stored=%d "
			    "planned=%d error=\"%s\"", w->accession,
			    s->nstored, s->nplanned, e.msg);
			snprintf(s->failure, sizeof s->failure, "storing "
			    "image %d of %d failed: %.180s", n + 1,
			    s->nplanned, e.msg);
			ul_abort(a, 0, 0);
			ul_free(a);
			return store_status(&e);
		}
		s->nstored++;
	}
	close_assoc(a);
	return EX_OK;
}

/* --- exams --- */

static int
exam_begin(const struct options *o, struct exam_state *s, struct err *e)
{
	time_t now = time(NULL);
	struct tm tm;

	memset(s, 0, sizeof *s);
	localtime_r(&now, &tm);
	strftime(s->date, sizeof s->date, "%Y%m%d", &tm);
	strftime(s->time, sizeof s->time, "%H%M%S", &tm);
	s->nplanned = o->nviews * o->count;
	s->sop_class = mammo_sop_class(o->frames);
	if ((s->sop_uids = calloc((size_t)s->nplanned, MAMMO_UID_MAX)) ==
	    NULL)
		return err_set(e, ENOMEM, "out of memory");
	if (dcm_uid_new(s->mpps_uid, e) == -1)
		return -1;
	for (s->nseries = 0; s->nseries < o->nviews; s->nseries++)
		if (dcm_uid_new(s->series_uids[s->nseries], e) == -1)
			return -1;
	return 0;
}

static int
play_exam(struct run *r, const struct wl_item *x)
{
	struct exam_state s;
	struct err e = { 0 };
	const char *final;
	int rc, rc2;

	if (exam_begin(r->o, &s, &e) == -1) {
		log_error("exam not started", "error=\"%s\"", e.msg);
		free(s.sop_uids);
		return EX_OSERR;
	}
	log_info("exam started", "accession=%s study_instance_uid=%s "
	    "mpps_sop_instance_uid=%s images=%d", x->accession, x->study_uid,
	    s.mpps_uid, s.nplanned);
	if ((rc = mpps_send(r, x, &s, NULL)) != EX_OK) {
		free(s.sop_uids);
		return rc;
	}
	rc = store_images(r, x, &s);
	final = rc == EX_OK && !r->o->discontinue ? "COMPLETED" :
	    "DISCONTINUED";
	rc2 = mpps_send(r, x, &s, final);
	if (rc2 != EX_OK)
		log_error("MPPS left IN PROGRESS", "accession=%s "
		    "mpps_sop_instance_uid=%s", x->accession, s.mpps_uid);
	printf("accession=%s study_instance_uid=%s mpps_sop_instance_uid=%s "
	    "images=%d/%d mpps=\"%s\"\n", x->accession, x->study_uid,
	    s.mpps_uid, s.nstored, s.nplanned, rc2 == EX_OK ? final :
	    "IN PROGRESS");
	fflush(stdout);
	free(s.sop_uids);
	return rc != EX_OK ? rc : rc2;
}

static int
playable(const struct options *o, const struct wl_item *x)
{
	if (o->accession != NULL)
		return 1;	/* chosen by the operator */
	return x->sps_status[0] == '\0' ||
	    strcmp(x->sps_status, "SCHEDULED") == 0;
}

/* --list: what would be played; no demographics. */
static void
list_item(const struct wl_item *x)
{
	printf("accession=%s study_instance_uid=%s date=%s modality=%s "
	    "requested_procedure_id=%s sps_id=%s sps_status=%s\n",
	    x->accession, x->study_uid, x->sps_date, x->modality, x->rp_id,
	    x->sps_id, x->sps_status[0] ? x->sps_status : "-");
}

static int
run_all(struct run *r)
{
	struct item_list l = { 0 };
	size_t i;
	int rc, played = 0, worst = EX_OK;

	if ((rc = query_worklist(r, &l)) != EX_OK)
		return rc;
	log_info("worklist queried", "items=%zu date=%s modality=%s", l.n,
	    r->o->date, r->o->modality);
	for (i = 0; i < l.n; i++) {
		if (!playable(r->o, &l.v[i]))
			continue;
		played++;
		if (r->o->list) {
			list_item(&l.v[i]);
			continue;
		}
		if ((rc = play_exam(r, &l.v[i])) != EX_OK && worst == EX_OK)
			worst = rc;
		if (rc == EX_UNAVAILABLE || rc == EX_NOPERM)
			break;	/* the next exam would fail the same way */
	}
	free(l.v);
	if (played == 0) {
		log_error("worklist empty: no SCHEDULED item matches",
		    "date=%s modality=%s accession=%s", r->o->date,
		    r->o->modality, r->o->accession ? r->o->accession : "*");
		return EX_NOINPUT;
	}
	return worst;
}

/* --- options --- */

static int
parse_views(const char *s, struct options *o)
{
	char buf[256], *tok, *save;
	struct err e = { 0 };

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	o->nviews = 0;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (o->nviews == MAX_VIEWS ||
		    mammo_view_parse(tok, &o->views[o->nviews], &e) == -1) {
			fprintf(stderr, "modality-emu: %s\n", e.msg[0] ? e.msg :
			    "too many views");
			return -1;
		}
		o->nviews++;
	}
	return o->nviews > 0 ? 0 : -1;
}

static int
parse_ts(const char *s, enum ts_choice *ts)
{
	if (strcmp(s, "explicit") == 0)
		*ts = TS_EXPLICIT;
	else if (strcmp(s, "jpeg-lossless") == 0)
		*ts = TS_JPEG;
	else if (strcmp(s, "jpeg-ls") == 0)
		*ts = TS_JPEGLS;
	else {
		fprintf(stderr, "modality-emu: transfer syntax \"%s\": want "
		    "explicit, jpeg-lossless or jpeg-ls (this dcmtk has no "
		    "JPEG 2000 encoder)\n", s);
		return -1;
	}
	return 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "aet", required_argument, NULL, 'a' },
		{ "patient-name", required_argument, NULL, 'p' },
		{ "accession", required_argument, NULL, 'A' },
		{ "date", required_argument, NULL, 'd' },
		{ "modality", required_argument, NULL, 'm' },
		{ "views", required_argument, NULL, 'v' },
		{ "size", required_argument, NULL, 's' },
		{ "frames", required_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'c' },
		{ "transfer-syntax", required_argument, NULL, 't' },
		{ "discontinue", no_argument, NULL, 'D' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct err e = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'H': o->host = optarg; break;
		case 'a': o->calling_aet = optarg; break;
		case 'p': o->patient_name = optarg; break;
		case 'A': o->accession = optarg; break;
		case 'm': o->modality = optarg; break;
		case 'D': o->discontinue = 1; break;
		case 'l': o->list = 1; break;
		case 'd':
			if (strlen(optarg) != 8 || strspn(optarg,
			    "0123456789") != 8) {
				fprintf(stderr, "modality-emu: --date wants "
				    "YYYYMMDD\n");
				return EX_USAGE;
			}
			strcpy(o->date, optarg);
			break;
		case 'v':
			if (parse_views(optarg, o) == -1)
				return EX_USAGE;
			break;
		case 's':
			if (mammo_size_parse(optarg, &o->rows, &o->cols,
			    &e) == -1) {
				fprintf(stderr, "modality-emu: %s\n", e.msg);
				return EX_USAGE;
			}
			break;
		case 'f':
		case 'c':
			if (config_parse_int(optarg, 1, c == 'f' ? MAMMO_MAX_FRAMES :
			    1000, c == 'f' ? &o->frames : &o->count) == -1) {
				fprintf(stderr, "modality-emu: --%s wants a "
				    "number from 1\n", c == 'f' ? "frames" :
				    "count");
				return EX_USAGE;
			}
			break;
		case 't':
			if (parse_ts(optarg, &o->ts) == -1)
				return EX_USAGE;
			break;
		case 'h':
			usage(stdout);
			exit(EX_OK);
		case 'V':
			printf("modality-emu %s\n", GW_VERSION);
			exit(EX_OK);
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc || strlen(o->calling_aet) == 0 ||
	    strlen(o->calling_aet) > 16) {
		usage(stderr);
		return EX_USAGE;
	}
	return EX_OK;
}

static void
defaults(struct options *o)
{
	memset(o, 0, sizeof *o);
	o->host = "127.0.0.1";
	o->calling_aet = "MODALITY_EMU";
	o->modality = "MG";
	o->rows = MAMMO_FULL_ROWS;
	o->cols = MAMMO_FULL_COLS;
	o->frames = 1;
	o->count = 1;
	o->ts = TS_EXPLICIT;
	parse_views("RCC,LCC,RMLO,LMLO", o);
}

int
main(int argc, char **argv)
{
	struct options o;
	struct run r = { .o = &o };
	struct worklist_site site;
	struct err e = { 0 };
	int rc;

	log_init("modality-emu");
	signal(SIGPIPE, SIG_IGN);
	defaults(&o);
	if ((rc = parse_options(argc, argv, &o)) != EX_OK)
		return rc;
	/* A modality's clock shows the site's time: "today" is the local
	 * day of WORKLIST_TIMEZONE, as the worklist's (mwlscp(8)). */
	if (config_load(&r.cfg, &e) == -1 ||
	    worklist_site_init(&site, &e) == -1) {
		fprintf(stderr, "modality-emu: %s\n", e.msg);
		return EX_CONFIG;
	}
	if (o.date[0] == '\0')
		worklist_today(o.date);
	return run_all(&r);
}
