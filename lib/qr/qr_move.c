/*
 * qr_move: C-MOVE and C-GET (PS3.4 C.4.2, C.4.3).
 *
 * The instances a retrieve identifier names (qr_instances) are listed
 * first, then sent one C-STORE sub-operation at a time: for C-MOVE on one
 * sub-association to the destination from QR_DESTINATIONS, for C-GET on
 * the requester's own association (it took the SCP role for the storage
 * classes).  Each object goes in its stored transfer syntax where a
 * context took it (the stored bytes after the meta group), else decoded
 * to uncompressed little endian (transcode_native_*), else it is a failed
 * sub-operation with a log line.  Either way the data set is sent as it is
 * read or decoded (struct ul_source): a buffer of the file, or one frame,
 * in memory at a time, so a 2 GB tomosynthesis object costs no more than
 * a mammogram.  A pending response follows each
 * sub-operation; a C-CANCEL between two ends the retrieval with FE00; the
 * final response carries the counts and, when some failed, the Failed
 * SOP Instance UID List.  While a retrieval runs, run/qr-move.<pid> says
 * how far it got (gatewayd status counts them).
 */
#include "qr/qr.h"
#include "dicomnet/dicomnet.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "image/image.h"

#define TAG_FAILED_UIDS		DCM_TAG(0x0008, 0x0058)
#define TAG_SOP_INSTANCE	DCM_TAG(0x0008, 0x0018)
#define MAX_SUBOPS		65535	/* the counts are US */
#define UID_LIST_EXPLICIT_MAX	65534	/* a UI value's 16-bit length */

/* One instance to send. */
struct item {
	char sop_instance_uid[DIMSE_UID_MAX];
	char sop_class_uid[DIMSE_UID_MAX];
	char ts[DIMSE_UID_MAX];
	char hash[STORE_HASH_LEN + 1];
	int purged;			/* retention removed its file */
	int failed;
};

/* Where a sub-operation stands after it was tried. */
enum outcome { SENT_OK, SENT_WARNING, SENT_FAILED, LINK_GONE };

struct retrieve {
	struct qr_session *x;
	const struct dimse_msg *rq;
	int is_get;
	const char *op;			/* "c-move", "c-get" for logs */
	char dest[UL_AE_MAX];		/* the destination's AE title */
	struct item *items;
	size_t n, cap, next;
	int bad_uid;			/* an index UID did not fit */
	struct ul_assoc *sub;		/* where the C-STOREs go */
	uint16_t store_id;		/* last sub-operation message ID */
	unsigned completed, failed, warning;
	int cancelled;
	int requester_gone;		/* our answer cannot be sent */
	char why[192];			/* the sub-association's failure */
	char progress[PATH_MAX];
	time_t progress_at;		/* last written */
	char started[32];
	struct timespec t0;
};

/* --- the instances --- */

static int
copy_uid(char *out, const char *in)
{
	return snprintf(out, DIMSE_UID_MAX, "%s", in) >= DIMSE_UID_MAX ? -1 :
	    0;
}

static int
add_item(void *arg, const struct qr_instance *in)
{
	struct retrieve *r = arg;
	struct item *it;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;

		if (r->n >= MAX_SUBOPS + 1)
			return 1;	/* the caller says "too many" */
		if ((it = reallocarray(r->items, cap, sizeof *it)) == NULL)
			return 1;
		r->items = it;
		r->cap = cap;
	}
	it = &r->items[r->n++];
	memset(it, 0, sizeof *it);
	if (copy_uid(it->sop_instance_uid, in->sop_instance_uid) == -1 ||
	    copy_uid(it->sop_class_uid, in->sop_class_uid) == -1 ||
	    copy_uid(it->ts, in->transfer_syntax_uid) == -1)
		r->bad_uid = 1;
	snprintf(it->hash, sizeof it->hash, "%s", in->hash);
	it->purged = in->purged;
	return 0;
}

/* --- progress: run/qr-move.<pid> --- */

/* Replaced whole (rename), at most once a second. */
static void
progress_write(struct retrieve *r)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	if (r->progress[0] == '\0' || (r->next > 0 &&
	    time(NULL) == r->progress_at))
		return;
	r->progress_at = time(NULL);
	snprintf(tmp, sizeof tmp, "%s.tmp", r->progress);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "operation=%s\ndest=%s\ntotal=%zu\ndone=%zu\n"
	    "completed=%u\nfailed=%u\nwarning=%u\nstarted=%s\n", r->op,
	    r->dest, r->n, r->next, r->completed, r->failed, r->warning,
	    r->started);
	if (fclose(f) != 0 || rename(tmp, r->progress) == -1)
		unlink(tmp);
}

static void
progress_start(struct retrieve *r)
{
	const struct config *c = &r->x->set->cfg;

	pacs_timestamp(r->started);
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	if (snprintf(r->progress, sizeof r->progress, "%s/run/qr-move.%ld",
	    c->data_dir, (long)getpid()) >= (int)sizeof r->progress)
		r->progress[0] = '\0';
	progress_write(r);
}

static void
progress_end(struct retrieve *r)
{
	if (r->progress[0] != '\0')
		unlink(r->progress);
}

/* --- responses --- */

static const char *
ts_for(const struct retrieve *r)
{
	const struct ul_context *c = ul_context(r->x->s->a, r->rq->ctx_id);

	return c != NULL ? c->transfer_syntax : DCM_TS_IMPLICIT_LE;
}

/* (0008,0058) of the failed instances, as much of it as fits. */
static int
failed_list(const struct retrieve *r, uint8_t **out, size_t *outlen,
    struct err *e)
{
	const char *ts = ts_for(r);
	size_t max = strcmp(ts, DCM_TS_IMPLICIT_LE) == 0 ? SIZE_MAX / 2 :
	    UID_LIST_EXPLICIT_MAX;
	struct dcm_builder *b;
	char *list;
	size_t len = 0, i, cut = 0;
	int rc;

	if ((list = malloc(r->n * DIMSE_UID_MAX + 1)) == NULL)
		return err_set(e, ENOMEM, "out of memory");
	list[0] = '\0';
	for (i = 0; i < r->n; i++) {
		size_t k = strlen(r->items[i].sop_instance_uid);

		if (!r->items[i].failed)
			continue;
		if (len + k + 1 > max) {
			cut++;
			continue;
		}
		if (len > 0)
			list[len++] = '\\';
		memcpy(list + len, r->items[i].sop_instance_uid, k + 1);
		len += k;
	}
	if (cut > 0)
		log_warn("failed sop instance uid list cut", "peer=%s "
		    "left_out=%zu", r->x->s->peer, cut);
	if ((b = dcm_build_new()) == NULL) {
		free(list);
		return err_set(e, ENOMEM, "out of memory");
	}
	rc = dcm_build_string(b, TAG_FAILED_UIDS, "UI", list, e);
	if (rc == 0)
		rc = dcm_build_encode(b, ts, NULL, out, outlen, e);
	dcm_build_free(b);
	free(list);
	return rc;
}

static int
respond(struct retrieve *r, uint16_t status, const char *comment)
{
	struct dimse_cmd rsp;
	struct err e = { 0 };
	uint8_t *id = NULL;
	size_t idlen = 0;
	int rc;

	dimse_response(&r->rq->cmd, status, &rsp);
	rsp.has_subops = 1;
	rsp.remaining = (uint16_t)(r->n - r->next);
	rsp.completed = (uint16_t)r->completed;
	rsp.failed = (uint16_t)r->failed;
	rsp.warning = (uint16_t)r->warning;
	if (comment != NULL && status != DIMSE_SUCCESS)
		snprintf(rsp.error_comment, sizeof rsp.error_comment,
		    "%.64s", comment);
	if (status != DIMSE_PENDING && r->failed > 0 &&
	    failed_list(r, &id, &idlen, &e) == -1)
		log_warn("cannot encode the failed instance list", "peer=%s "
		    "error=\"%s\"", r->x->s->peer, e.msg);
	rc = dimse_send(r->x->s->a, r->rq->ctx_id, &rsp, id, idlen, &e);
	free(id);
	if (rc == -1) {
		log_warn("send failed", "peer=%s error=\"%s\"", r->x->s->peer,
		    e.msg);
		r->requester_gone = 1;
	}
	return rc;
}

/* --- one sub-operation --- */

static int
is_little_endian(const char *ts)
{
	return strcmp(ts, DCM_TS_EXPLICIT_LE) == 0 ||
	    strcmp(ts, DCM_TS_IMPLICIT_LE) == 0;
}

/*
 * The context to send it on: one that took its stored syntax (*as_stored
 * set; for deflated and big endian objects never: they are re-encoded),
 * else one that took uncompressed little endian, explicit first.  NULL
 * when none did.
 */
static const struct ul_context *
pick_context(const struct retrieve *r, const struct item *it, int *as_stored)
{
	const struct ul_context *le = NULL;
	const struct ul_assoc *a = r->sub;
	int i;

	*as_stored = 0;
	for (i = 0; i < a->nctx; i++) {
		const struct ul_context *c = &a->ctx[i];

		if (c->result != UL_CTX_ACCEPTED ||
		    strcmp(c->abstract_syntax, it->sop_class_uid) != 0 ||
		    (r->is_get && !c->peer_is_scp))
			continue;
		if (strcmp(c->transfer_syntax, it->ts) == 0 &&
		    (!transcode_is_native(it->ts) ||
		    is_little_endian(it->ts))) {
			*as_stored = 1;
			return c;
		}
		if (is_little_endian(c->transfer_syntax) && (le == NULL ||
		    strcmp(c->transfer_syntax, DCM_TS_EXPLICIT_LE) == 0))
			le = c;
	}
	return le;
}

/* A stored object sent as stored: its data set read from the file a
 * buffer at a time (the page cache is not this process's memory). */
#define OBJECT_BUF	((size_t)256 << 10)

struct object {
	int fd;
	size_t len, pos;	/* the data set is [off, len): pos next */
	uint8_t *buf;
	const char *path;
};

static ssize_t
object_next(void *arg, const uint8_t **p, size_t max, struct err *e)
{
	struct object *o = arg;
	size_t n = max < OBJECT_BUF ? max : OBJECT_BUF;
	ssize_t k;

	if (n > o->len - o->pos)
		n = o->len - o->pos;
	while ((k = pread(o->fd, o->buf, n, (off_t)o->pos)) == -1 &&
	    errno == EINTR)
		;
	if (k == -1)
		return err_sys(e, "read %s", o->path);
	if (k == 0 && n > 0)
		return err_set(e, EIO, "%s: shorter than it was", o->path);
	o->pos += (size_t)k;
	*p = o->buf;
	return k;
}

static int
object_open(const struct item *it, const char *path,
    struct object *o, struct err *e)
{
	struct dcm *d = NULL;
	struct stat st;
	char uid[DIMSE_UID_MAX];
	int rc;

	memset(o, 0, sizeof o[0]);
	o->path = path;
	if ((o->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return err_sys(e, "open %s", path);
	if (fstat(o->fd, &st) == -1 || st.st_size == 0)
		return err_sys(e, "empty or unreadable %s", path);
	o->len = (size_t)st.st_size;
	if ((o->buf = malloc(OBJECT_BUF)) == NULL)
		return err_set(e, ENOMEM, "out of memory");
	rc = dcm_open(path, DCM_STOP_AT_PIXELS | DCM_REQUIRE_META, &d, e);
	if (rc == 0 && strcmp(dcm_transfer_syntax(d), it->ts) != 0)
		rc = err_set(e, EINVAL, "the object is in %s, the index says "
		    "%s", dcm_transfer_syntax(d), it->ts);
	if (rc == 0 && (dcm_get_string(d, NULL, TAG_SOP_INSTANCE, 0, uid,
	    sizeof uid, NULL) < 1 || strcmp(uid, it->sop_instance_uid) != 0))
		rc = err_set(e, EINVAL, "the object's SOP Instance UID is not "
		    "the index's");
	if (rc == 0)
		rc = scu_dataset_offset(d, &o->pos, e);
	dcm_free(d);
	return rc;
}

static void
object_close(struct object *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	free(o->buf);
	o->buf = NULL;
}

/* The decoded object (transcode_native_*) as a source. */
static ssize_t
native_next(void *arg, const uint8_t **p, size_t max, struct err *e)
{
	return transcode_native_read(arg, p, max, e);
}

/* C-GET: wait for our C-STORE's response on the requester's association,
 * taking a C-CANCEL of the C-GET on the way. */
static int
get_store_response(struct retrieve *r, uint16_t *status, struct err *e)
{
	struct dimse_msg m;
	int k;

	for (;;) {
		k = dimse_recv(r->sub, &m, e);
		if (k != UL_MESSAGE)
			return k == -1 ? -1 : err_set(e, UL_E_CLOSED, "the "
			    "requester left during a C-STORE");
		if (m.cmd.command_field == DIMSE_C_STORE_RSP &&
		    m.cmd.message_id_responded == r->store_id) {
			*status = m.cmd.status;
			dimse_msg_free(&m);
			return 0;
		}
		if (m.cmd.command_field == DIMSE_C_CANCEL_RQ &&
		    m.cmd.message_id_responded == r->rq->cmd.message_id) {
			log_info("c-cancel", "peer=%s message_id=%u",
			    r->x->s->peer, m.cmd.message_id_responded);
			r->cancelled = 1;
			dimse_msg_free(&m);
			continue;
		}
		k = m.cmd.command_field;
		dimse_msg_free(&m);
		ul_abort(r->sub, 2, 2);
		return err_set(e, UL_E_PROTOCOL, "unexpected %s during a "
		    "C-GET", dimse_command_name((uint16_t)k));
	}
}

static int
store_source(struct retrieve *r, const struct ul_context *c,
    const struct item *it, const struct ul_source *src, uint16_t *status,
    struct err *e)
{
	struct scu_store_rq s = { it->sop_class_uid, it->sop_instance_uid,
	    ++r->store_id, NULL, 0 };
	struct dimse_cmd rq;

	if (!r->is_get) {
		s.move_originator_aet = r->x->s->a->calling_aet;
		s.move_originator_id = r->rq->cmd.message_id;
		return scu_store_source(r->sub, c->id, &s, src, status, e);
	}
	scu_store_command(&s, &rq);
	if (dimse_send_source(r->sub, c->id, &rq, src, e) == -1)
		return -1;
	return get_store_response(r, status, e);
}

static void
log_failed(const struct retrieve *r, const struct item *it, const char *why)
{
	char q[600];

	log_warn("sub-operation failed", "peer=%s operation=%s dest=%s "
	    "sop_instance_uid=%s sop_class_uid=%s transfer_syntax=%s "
	    "error=%s", r->x->s->peer, r->op, r->dest, it->sop_instance_uid,
	    it->sop_class_uid, it->ts, log_quote(why, q, sizeof q));
}

/* Read, encode if need be, and send one instance. */
static enum outcome
send_one(struct retrieve *r, struct item *it)
{
	const struct ul_context *c;
	struct object o = { .fd = -1 };
	struct transcode_stream *native = NULL;
	struct ul_source src = { NULL, NULL, 0 };
	struct err e = { 0 };
	char path[PATH_MAX];
	uint16_t status = 0;
	int as_stored, rc;

	if (it->purged) {
		log_failed(r, it, "retention purged this object from the store");
		return SENT_FAILED;
	}
	if ((c = pick_context(r, it, &as_stored)) == NULL) {
		log_failed(r, it, r->is_get ? "the requester took neither the "
		    "stored transfer syntax nor uncompressed for this SOP "
		    "class (no storage context with the SCP role)" :
		    "the destination accepts neither the stored transfer "
		    "syntax nor uncompressed for this SOP class");
		return SENT_FAILED;
	}
	if (store_path(&r->x->store, it->hash, path, sizeof path, &e) == -1) {
		log_failed(r, it, e.msg);
		return SENT_FAILED;
	}
	if (as_stored) {
		rc = object_open(it, path, &o, &e);
		src = (struct ul_source){ object_next, &o, o.len - o.pos };
	} else {
		rc = transcode_native_open(path, c->transfer_syntax, &native,
		    &src.len, &e);
		src.next = native_next;
		src.arg = native;
	}
	if (rc == -1) {
		object_close(&o);
		log_failed(r, it, e.code == ENOENT ? "the object is no longer "
		    "in the store (purged?)" : e.msg);
		return SENT_FAILED;
	}
	if (!as_stored)
		log_debug("decompressed for the peer", "sop_instance_uid=%s "
		    "from=%s to=%s bytes=%zu", it->sop_instance_uid, it->ts,
		    c->transfer_syntax, src.len);
	rc = store_source(r, c, it, &src, &status, &e);
	object_close(&o);
	transcode_native_close(native);
	if (rc == -1) {
		snprintf(r->why, sizeof r->why, "%s lost: %.120s", r->is_get ?
		    "the association" : "the sub-association to the "
		    "destination", e.msg);
		log_failed(r, it, r->why);
		return LINK_GONE;
	}
	if (!scu_store_ok(status)) {
		char why[80];

		snprintf(why, sizeof why, "C-STORE status 0x%04X", status);
		log_failed(r, it, why);
		return SENT_FAILED;
	}
	return status == DIMSE_SUCCESS ? SENT_OK : SENT_WARNING;
}

/* --- the sub-association (C-MOVE) --- */

struct proposals {
	struct ul_proposal p[UL_MAX_CONTEXTS];
	const char *ts[UL_MAX_CONTEXTS][3];
	size_t n;
};

static const char *const le_syntaxes[] = { DCM_TS_EXPLICIT_LE,
    DCM_TS_IMPLICIT_LE, NULL };

/* Add (class, ts) once; ts NULL: the little endian context.  -1 past
 * UL_MAX_CONTEXTS. */
static int
propose(struct proposals *ps, const char *class, const char *ts)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		if (strcmp(ps->p[i].abstract_syntax, class) == 0 &&
		    (ts == NULL ? ps->p[i].transfer_syntaxes == le_syntaxes :
		    ps->p[i].transfer_syntaxes != le_syntaxes &&
		    strcmp(ps->ts[i][0], ts) == 0))
			return 0;
	if (ps->n == UL_MAX_CONTEXTS)
		return -1;
	ps->p[ps->n].abstract_syntax = class;
	ps->p[ps->n].scp_role = 0;
	if (ts == NULL)
		ps->p[ps->n].transfer_syntaxes = le_syntaxes;
	else {
		ps->ts[ps->n][0] = ts;
		ps->ts[ps->n][1] = NULL;
		ps->p[ps->n].transfer_syntaxes = ps->ts[ps->n];
	}
	ps->n++;
	return 0;
}

/* Per SOP class a little endian context, and one per compressed
 * syntax its instances are stored in. */
static int
build_proposals(const struct retrieve *r, struct proposals *ps)
{
	size_t i;

	ps->n = 0;
	for (i = 0; i < r->n; i++) {
		const struct item *it = &r->items[i];

		if (it->purged)
			continue;
		if (propose(ps, it->sop_class_uid, NULL) == -1 ||
		    (!transcode_is_native(it->ts) &&
		    propose(ps, it->sop_class_uid, it->ts) == -1))
			return -1;
	}
	return 0;
}

static int
open_sub(struct retrieve *r, const struct qr_destination *d,
    const struct proposals *ps)
{
	const struct scp_server *srv = r->x->s->srv;
	struct ul_config cfg = { 0 };
	struct err e = { 0 };
	char q[600];
	int rc;

	cfg.artim_ms = srv->artim_s * 1000;
	cfg.idle_ms = srv->idle_s * 1000;
	cfg.dimse_ms = srv->dimse_s * 1000;
	/* A "tls" destination: verified against GATEWAY_TLS_CA (else the
	 * system's CAs), our certificate offered for mutual TLS. */
	if (d->tls && tls_client_ctx(&cfg.tls_client, r->x->set->tls_ca,
	    r->x->set->tls_cert, r->x->set->tls_key, &e) == -1) {
		snprintf(r->why, sizeof r->why, "TLS settings: %.100s", e.msg);
		log_error("c-move sub-association failed", "peer=%s dest=%s "
		    "error=%s", r->x->s->peer, d->aet,
		    log_quote(r->why, q, sizeof q));
		return -1;
	}
	rc = ul_connect(&r->sub, d->host, d->port, srv->aet, d->aet, ps->p,
	    ps->n, &cfg, &e);
	tls_ctx_free(cfg.tls_client);	/* the connection holds its own */
	if (rc == 0)
		return 0;
	if (e.code == UL_E_REJECTED && r->sub != NULL)
		snprintf(r->why, sizeof r->why, "the destination rejected the "
		    "association: %s", scu_reject_reason(&r->sub->reject));
	else
		snprintf(r->why, sizeof r->why, "cannot open an association "
		    "with the destination: %.80s", e.msg);
	log_warn("c-move sub-association failed", "peer=%s dest=%s "
	    "host=%s port=%d error=%s", r->x->s->peer, d->aet, d->host,
	    d->port, log_quote(r->why, q, sizeof q));
	ul_free(r->sub);
	r->sub = NULL;
	return -1;
}

/* --- the retrieval --- */

static void
fail_rest(struct retrieve *r)
{
	for (; r->next < r->n; r->next++) {
		r->items[r->next].failed = 1;
		r->failed++;
	}
}

static void
count(struct retrieve *r, enum outcome o)
{
	struct item *it = &r->items[r->next++];

	if (o == SENT_OK)
		r->completed++;
	else if (o == SENT_WARNING)
		r->warning++;
	else {
		it->failed = 1;
		r->failed++;
	}
}

/* Every sub-operation, with a pending response after each but the
 * last; stops at a cancel, a lost destination or a lost requester. */
static void
run_subops(struct retrieve *r)
{
	enum outcome o;

	while (r->next < r->n && !r->cancelled) {
		o = send_one(r, &r->items[r->next]);
		count(r, o);
		if (o == LINK_GONE) {
			if (r->is_get) {
				r->requester_gone = 1;
				return;
			}
			ul_free(r->sub);
			r->sub = NULL;
			fail_rest(r);
		}
		progress_write(r);
		if (r->next == r->n || r->cancelled)
			break;
		if (scp_check_cancel(r->x->s, r->rq, &r->cancelled) == -1) {
			r->requester_gone = 1;
			return;
		}
		if (!r->cancelled && respond(r, DIMSE_PENDING, NULL) == -1)
			return;
	}
}

static double
elapsed(const struct retrieve *r)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - r->t0.tv_sec) +
	    (t.tv_nsec - r->t0.tv_nsec) / 1e9;
}

/* The final status: cancel, all well, some failed (B000), or nothing
 * could be sent (A702: no sub-association). */
static int
finish(struct retrieve *r, int no_sub)
{
	uint16_t status;
	const char *comment = NULL;

	if (r->cancelled)
		status = DIMSE_CANCEL;
	else if (no_sub) {
		status = 0xA702;
		comment = r->why;
	} else if (r->failed > 0 || r->warning > 0) {
		status = DIMSE_WARNING_SUBOPS;
		comment = r->why[0] != '\0' ? r->why : NULL;
	} else
		status = DIMSE_SUCCESS;
	log_info(r->op, "peer=%s message_id=%u dest=%s instances=%zu "
	    "completed=%u failed=%u warning=%u status=0x%04X seconds=%.3f",
	    r->x->s->peer, r->rq->cmd.message_id, r->dest, r->n, r->completed,
	    r->failed, r->warning, status, elapsed(r));
	return respond(r, status, comment);
}

/* Parse, open the index and list the instances; a refusal is answered
 * here (returns 1, or -1 when that answer could not be sent). */
static int
list_instances(struct retrieve *r, enum qr_root root)
{
	struct dcm *id;
	struct err e = { 0 };
	int n;

	if (qr_parse_identifier(r->x, r->rq, &id) == -1)
		return scp_respond(r->x->s, r->rq, DIMSE_IDENTIFIER_MISMATCH,
		    "cannot parse the identifier") == -1 ? -1 : 1;
	if (qr_session_open(r->x, &e) == -1) {
		dcm_free(id);
		log_error("cannot open the index", "error=\"%s\"", e.msg);
		return scp_respond(r->x->s, r->rq, DIMSE_UNABLE_TO_PROCESS,
		    "index unavailable") == -1 ? -1 : 1;
	}
	n = qr_instances(r->x->db, root, id, add_item, r, &e);
	dcm_free(id);
	if (n == -1) {
		log_warn("retrieve refused", "peer=%s operation=%s "
		    "error=\"%s\"", r->x->s->peer, r->op, e.msg);
		return scp_respond(r->x->s, r->rq, qr_refusal_status(&e),
		    e.msg) == -1 ? -1 : 1;
	}
	if (r->n > MAX_SUBOPS || (size_t)n != r->n || r->bad_uid) {
		log_warn("retrieve refused", "peer=%s operation=%s "
		    "instances=%d error=\"%s\"", r->x->s->peer, r->op, n,
		    r->bad_uid ? "a UID in the index is over 64 characters" :
		    "more than 65535 instances, or out of memory");
		return scp_respond(r->x->s, r->rq, 0xA702, r->bad_uid ?
		    "a stored UID is too long" : "too many instances for one "
		    "retrieval") == -1 ? -1 : 1;
	}
	return 0;
}

static void
retrieve_init(struct retrieve *r, struct qr_session *x,
    const struct dimse_msg *m, int is_get)
{
	memset(r, 0, sizeof *r);
	r->x = x;
	r->rq = m;
	r->is_get = is_get;
	r->op = is_get ? "c-get" : "c-move";
}

static int
retrieve_end(struct retrieve *r, int rc)
{
	if (r->requester_gone)
		log_warn("retrieve abandoned: the requester is gone", "peer=%s "
		    "operation=%s message_id=%u dest=%s instances=%zu done=%zu "
		    "seconds=%.3f", r->x->s->peer, r->op,
		    r->rq->cmd.message_id, r->dest, r->n, r->next, elapsed(r));
	progress_end(r);
	free(r->items);
	return r->requester_gone ? -1 : rc;
}

int
qr_serve_move(struct qr_session *x, const struct dimse_msg *m,
    enum qr_root root)
{
	const struct qr_destination *d;
	struct retrieve r;
	struct proposals ps;
	struct err e = { 0 };
	char q[40];
	int rc;

	retrieve_init(&r, x, m, 0);
	snprintf(r.dest, sizeof r.dest, "%s", m->cmd.move_destination);
	if ((d = qr_destination_find(&x->set->dests, r.dest)) == NULL) {
		log_warn("c-move to an unknown destination", "peer=%s "
		    "dest=%s destinations=%d", x->s->peer, log_quote(r.dest,
		    q, sizeof q), x->set->dests.n);
		return scp_respond(x->s, m, 0xA801, "move destination unknown");
	}
	if ((rc = list_instances(&r, root)) != 0)
		return retrieve_end(&r, rc == -1 ? -1 : 0);
	if (build_proposals(&r, &ps) == -1) {
		log_warn("c-move refused", "peer=%s dest=%s error=\"more than "
		    "%d presentation contexts needed\"", x->s->peer, d->aet,
		    UL_MAX_CONTEXTS);
		rc = scp_respond(x->s, m, 0xA702, "too many SOP classes and "
		    "transfer syntaxes for one association");
		return retrieve_end(&r, rc);
	}
	log_info("c-move started", "peer=%s message_id=%u dest=%s "
	    "instances=%zu contexts=%zu", x->s->peer, m->cmd.message_id,
	    d->aet, r.n, ps.n);
	progress_start(&r);
	if (ps.n > 0 && open_sub(&r, d, &ps) == -1) {
		fail_rest(&r);
		rc = finish(&r, 1);
		return retrieve_end(&r, rc);
	}
	run_subops(&r);
	if (r.sub != NULL && scu_close(r.sub, &e) == -1)
		log_warn("c-move sub-association release failed", "dest=%s "
		    "error=\"%s\"", d->aet, e.msg);
	r.sub = NULL;
	rc = r.requester_gone ? -1 : finish(&r, 0);
	return retrieve_end(&r, rc);
}

int
qr_serve_get(struct qr_session *x, const struct dimse_msg *m,
    enum qr_root root)
{
	struct retrieve r;
	int rc;

	retrieve_init(&r, x, m, 1);
	snprintf(r.dest, sizeof r.dest, "%s", x->s->a->calling_aet);
	r.sub = x->s->a;
	if ((rc = list_instances(&r, root)) != 0)
		return retrieve_end(&r, rc == -1 ? -1 : 0);
	log_info("c-get started", "peer=%s message_id=%u instances=%zu",
	    x->s->peer, m->cmd.message_id, r.n);
	progress_start(&r);
	run_subops(&r);
	rc = r.requester_gone ? -1 : finish(&r, 0);
	return retrieve_end(&r, rc);
}
