/*
 * report_html: the day's self-contained page for the clinic's staff (see
 * ops/ops.h).
 */
#include "ops/ops.h"

#include <errno.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/archive.h"
#include "cloud/cloud.h"
#include "worklist/worklist.h"

#define PREVIEW_MAX	(8 * 1024 * 1024)	/* a 400-pixel PNG is far less */

static const char style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#1b1b1b;"
    "background:#fafafa}"
    "h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .4em;"
    "border-bottom:2px solid #005eb8}"
    "h3{font-size:1.05em;margin:1em 0 .3em}"
    "table{border-collapse:collapse;background:#fff;margin:.3em 0}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;"
    "vertical-align:top}th{background:#e8edee}"
    ".muted{color:#666}.ok{color:#007f3b}.warn{color:#a35200}"
    ".bad{color:#d5281b;font-weight:bold}"
    ".alert{background:#fde8e6;border-left:5px solid #d5281b;padding:4px 8px;"
    "margin:4px 0}"
    "img.preview{max-width:160px;max-height:200px;background:#000;"
    "display:block}"
    ".nopreview{width:120px;height:80px;border:1px dashed #999;color:#666;"
    "display:flex;align-items:center;justify-content:center;"
    "text-align:center;font-size:12px}"
    "code{font-size:12px;word-break:break-all}";

struct acc_count {
	char acc[PACS_LO];
	int images;
};

struct page {
	FILE *f;
	const struct config *c;
	const struct report_html_opts *o;
	char day[11];			/* YYYY-MM-DD */
	struct acc_count *accs;		/* images today per accession */
	size_t naccs, cap;
	long long study;		/* the study being written; 0 none */
	int studies, previews;
	struct err *e;			/* the first error of a callback */
	int failed;
};

/* ------------------------------------------------------------ helpers */

/* s as HTML text (also fit inside a quoted attribute). */
static void
esc(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
		}
}

/* A cell: the text escaped, or a muted dash when it is empty. */
static void
cell(FILE *f, const char *s)
{
	fputs("<td>", f);
	if (*s != '\0')
		esc(f, s);
	else
		fputs("<span class=\"muted\">-</span>", f);
	fputs("</td>", f);
}

static void
cell_num(FILE *f, long long n)
{
	fprintf(f, "<td>%lld</td>", n);
}

/* A paragraph saying what could not be read, and why. */
static void
bad(FILE *f, const char *what, const char *why)
{
	fprintf(f, "<p class=\"bad\">%s", what);
	esc(f, why);
	fputs("</p>\n", f);
}

/* The class an upload state is shown in. */
static const char *
state_class(const char *s)
{
	if (strcmp(s, "COMPLETE") == 0)
		return "ok";
	if (strcmp(s, "FAILED") == 0 || strcmp(s, "REFUSED") == 0)
		return "bad";
	if (strcmp(s, "WAITING") == 0 || strcmp(s, "UNMATCHED") == 0 ||
	    strcmp(s, "HELD") == 0)
		return "warn";
	return "muted";
}

/* A size as "17 B", "9.6 kB", "12.3 MB". */
static void
size_text(long long n, char *out, size_t outsz)
{
	if (n < 1000)
		snprintf(out, outsz, "%lld B", n);
	else if (n < 1000000)
		snprintf(out, outsz, "%.1f kB", n / 1e3);
	else
		snprintf(out, outsz, "%.1f MB", n / 1e6);
}

static void
local_time(time_t t, const char *fmt, char *out, size_t outsz)
{
	struct tm tm;

	if (t == 0 || localtime_r(&t, &tm) == NULL ||
	    strftime(out, outsz, fmt, &tm) == 0)
		snprintf(out, outsz, "-");
}

/* ------------------------------------------------------------ previews */

/* The PNG's size from its IHDR chunk: 0, or -1 when it is no PNG. */
static int
png_size(const unsigned char *b, size_t n, uint32_t *w, uint32_t *h)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n',
	    0x1a, '\n' };

	if (n < 24 || memcmp(b, sig, 8) != 0 || memcmp(b + 12, "IHDR", 4) != 0)
		return -1;
	*w = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 |
	    (uint32_t)b[18] << 8 | b[19];
	*h = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 |
	    (uint32_t)b[22] << 8 | b[23];
	return 0;
}

/* The preview as an <img> with a data: URI; 0, or -1 with why set when
 * it cannot be shown (the page says so instead). */
static int
preview_img(struct page *p, const struct pacs_day_image *im, char *why,
    size_t whysz)
{
	char path[PATH_MAX], *png = NULL, *b64;
	struct err fe = { 0 };
	uint32_t w, h;
	size_t n;

	if (strstr(im->thumbnail_path, "..") != NULL || snprintf(path,
	    sizeof path, "%s/%s", p->o->thumbs_dir, im->thumbnail_path) >=
	    (int)sizeof path || fs_read_small(path, PREVIEW_MAX, &png, &n,
	    &fe) == -1) {
		snprintf(why, whysz, "preview file missing");
		return -1;
	}
	if (png_size((unsigned char *)png, n, &w, &h) == -1 ||
	    (b64 = malloc(4 * ((n + 2) / 3) + 1)) == NULL) {
		free(png);
		snprintf(why, whysz, "preview file unreadable");
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)png, (int)n);
	fprintf(p->f, "<img class=\"preview\" width=\"%u\" height=\"%u\" "
	    "alt=\"preview of ", w, h);
	esc(p->f, im->sop_instance_uid);
	fprintf(p->f, "\" src=\"data:image/png;base64,%s\">", b64);
	free(b64);
	free(png);
	p->previews++;
	return 0;
}

static void
preview_cell(struct page *p, const struct pacs_day_image *im)
{
	char why[64];

	fputs("<td>", p->f);
	if (strcmp(im->thumbnail_status, "GENERATED") == 0 &&
	    *im->thumbnail_path != '\0' &&
	    preview_img(p, im, why, sizeof why) == 0) {
		fputs("</td>", p->f);
		return;
	}
	if (strcmp(im->thumbnail_status, "GENERATED") != 0)
		snprintf(why, sizeof why, "no preview (%s)",
		    *im->thumbnail_status ? im->thumbnail_status : "none");
	fputs("<div class=\"nopreview\">", p->f);
	esc(p->f, why);
	fputs("</div></td>", p->f);
}

/* ------------------------------------------------------------- alerts */

static int
alert_line(const struct open_alert *a, void *arg)
{
	struct page *p = arg;
	char since[32];

	local_time(a->since, "%Y-%m-%d %H:%M", since, sizeof since);
	fputs("<div class=\"alert\"><b>", p->f);
	esc(p->f, a->name);
	fputs("</b>: ", p->f);
	esc(p->f, a->summary);
	fprintf(p->f, " <span class=\"muted\">(since %s)</span></div>\n",
	    since);
	return 0;
}

static void
alerts_section(struct page *p)
{
	struct err e = { 0 };
	int n;

	fputs("<h2 id=\"alerts\">Open alerts</h2>\n", p->f);
	if ((n = alertlist_each(p->c, alert_line, p, &e)) == -1) {
		bad(p->f, "The alerts cannot be read: ", e.msg);
	} else if (n == 0)
		fputs("<p class=\"ok\">None.</p>\n", p->f);
}

/* ----------------------------------------------------------- worklist */

static int
count_image(const struct pacs_day_image *im, void *arg)
{
	struct page *p = arg;
	struct acc_count *grown;
	size_t i;

	for (i = 0; i < p->naccs; i++)
		if (strcmp(p->accs[i].acc, im->accession_number) == 0)
			break;
	if (i == p->naccs) {
		if (p->naccs == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 32;
			if ((grown = realloc(p->accs, p->cap *
			    sizeof *grown)) == NULL) {
				p->failed = err_set(p->e, ENOMEM,
				    "report: out of memory");
				return 1;
			}
			p->accs = grown;
		}
		snprintf(p->accs[i].acc, sizeof p->accs[i].acc, "%s",
		    im->accession_number);
		p->accs[i].images = 0;
		p->naccs++;
	}
	p->accs[i].images++;
	return 0;
}

/* The accession number's place among the day's studies, or -1. */
static long
acc_index(const struct page *p, const char *acc)
{
	for (size_t i = 0; i < p->naccs; i++)
		if (strcmp(p->accs[i].acc, acc) == 0)
			return (long)i;
	return -1;
}

static int
worklist_row(void *arg, struct worklist_item *it, struct err *e)
{
	struct page *p = arg;
	const char *t = it->scheduled_time;
	char when[8], arrived[32];
	struct tm tm = { 0 };
	time_t at = 0;
	long i = acc_index(p, it->accession_number);

	(void)e;
	snprintf(when, sizeof when, "%.2s:%.2s", t, strlen(t) >= 4 ? t + 2 :
	    "00");
	if (strptime(it->created_at, "%Y-%m-%dT%H:%M:%S", &tm) != NULL)
		at = timegm(&tm);
	local_time(at, "%Y-%m-%d %H:%M", arrived, sizeof arrived);
	fputs("<tr>", p->f);
	cell(p->f, when);
	cell(p->f, it->accession_number);
	cell(p->f, it->status);
	cell(p->f, it->modality);
	cell(p->f, *it->scheduled_station_aet ? it->scheduled_station_aet :
	    "any");
	cell(p->f, p->o->names ? it->patient_name : "");
	cell(p->f, arrived);
	if (i >= 0)
		fprintf(p->f, "<td><a href=\"#study-%ld\">%d</a></td>", i,
		    p->accs[i].images);
	else
		fputs("<td class=\"muted\">0</td>", p->f);
	fputs("</tr>\n", p->f);
	return 0;
}

static void
worklist_section(struct page *p)
{
	struct worklist *w;
	struct err e = { 0 };
	char day[9];
	int n;

	fputs("<h2 id=\"worklist\">Worklist</h2>\n", p->f);
	snprintf(day, sizeof day, "%.4s%.2s%.2s", p->day, p->day + 5,
	    p->day + 8);
	if (worklist_open_existing(&w, p->c->worklist_db_path, &e) == -1) {
		bad(p->f, "", e.msg);
		return;
	}
	fputs("<table><tr><th>Time</th><th>Accession</th><th>State</th>"
	    "<th>Modality</th><th>Station</th><th>Patient</th>"
	    "<th>Arrived</th><th>Images today</th></tr>\n", p->f);
	n = worklist_each(w, day, 1, worklist_row, p, &e);
	worklist_close(w);
	fputs("</table>\n", p->f);
	if (n == -1) {
		bad(p->f, "The worklist cannot be read: ", e.msg);
	} else if (n == 0)
		fputs("<p class=\"warn\">No worklist item is scheduled on this "
		    "day: has the clinic's list arrived?</p>\n", p->f);
	else
		fprintf(p->f, "<p>%d item%s.</p>\n", n, n == 1 ? "" : "s");
}

/* ------------------------------------------------------------ studies */

static void
study_header(struct page *p, const struct pacs_day_image *im)
{
	if (p->study != 0)
		fputs("</table>\n", p->f);
	p->study = im->study_id;
	p->studies++;
	fputs("<h3", p->f);
	if (*im->accession_number)	/* the worklist's link: by accession */
		fprintf(p->f, " id=\"study-%ld\"", acc_index(p,
		    im->accession_number));
	fputs(">Study ", p->f);
	esc(p->f, *im->accession_number ? im->accession_number :
	    im->study_instance_uid);
	fputs("</h3>\n<p>", p->f);
	if (p->o->names && *im->patient_name) {
		esc(p->f, im->patient_name);
		fputs(" &middot; ", p->f);
	}
	if (*im->study_description) {
		esc(p->f, im->study_description);
		fputs(" &middot; ", p->f);
	}
	fputs("<code>", p->f);
	esc(p->f, im->study_instance_uid);
	fputs("</code></p>\n<table><tr><th>Preview</th><th>Image</th>"
	    "<th>Received</th><th>Store</th><th>Cloud</th>"
	    "<th>Query/Retrieve</th></tr>\n", p->f);
}

static void
image_cell(FILE *f, const struct pacs_day_image *im)
{
	char view[64];

	snprintf(view, sizeof view, "%s %s", im->laterality, im->view_position);
	fputs("<td><b>", f);
	esc(f, strcmp(view, " ") != 0 ? view : "-");
	fputs("</b><br>series ", f);
	esc(f, *im->series_number ? im->series_number : "-");
	fputs(", number ", f);
	esc(f, *im->instance_number ? im->instance_number : "-");
	if (im->rows > 0)
		fprintf(f, "<br>%d&times;%d", im->columns, im->rows);
	if (im->frames > 1)
		fprintf(f, ", %d frames", im->frames);
	fputs("<br><code>", f);
	esc(f, im->sop_instance_uid);
	fputs("</code></td>", f);
}

static void
store_cell(const struct page *p, const struct pacs_day_image *im)
{
	FILE *f = p->f;
	char size[32];

	fputs("<td>", f);
	if (*im->purged_at) {
		fputs("<span class=\"muted\">freed by retention ", f);
		esc(f, im->purged_at);
		fputs("</span>", f);
	} else {
		fputs("<code title=\"", f);
		esc(f, p->c->storage_path);
		fputs("/", f);
		esc(f, im->storage_path);
		fputs("\">", f);
		esc(f, im->storage_path);
		fputs("</code>", f);
	}
	size_text(im->size, size, sizeof size);
	fprintf(f, "<br>%s, sha256 <code>%.16s&hellip;</code></td>", size,
	    im->object_hash);
}

static void
cloud_cell(FILE *f, const struct pacs_day_image *im)
{
	const char *s = *im->upload_status ? im->upload_status : "PENDING";

	fprintf(f, "<td><span class=\"%s\">", state_class(s));
	esc(f, s);
	fprintf(f, "</span>, %d attempt%s", im->upload_attempts,
	    im->upload_attempts == 1 ? "" : "s");
	if (*im->uploaded_at) {
		fputs("<br>sent ", f);
		esc(f, im->uploaded_at);
	}
	if (*im->upload_next_attempt_at && strcmp(s, "COMPLETE") != 0) {
		fputs("<br>next attempt ", f);
		esc(f, im->upload_next_attempt_at);
	}
	if (*im->upload_error) {
		fputs("<br><span class=\"bad\">", f);
		esc(f, im->upload_error);
		fputs("</span>", f);
	}
	fputs("</td>", f);
}

static void
qr_cell(FILE *f, const struct pacs_day_image *im)
{
	fputs("<td>", f);
	fputs(*im->purged_at ? "<span class=\"muted\">index only</span>" :
	    "retrievable", f);
	if (*im->committed_to) {
		fputs("<br>committed to ", f);
		esc(f, im->committed_to);
		fputs(" ", f);
		esc(f, im->committed_at);
	}
	fputs("</td>", f);
}

static int
image_row(const struct pacs_day_image *im, void *arg)
{
	struct page *p = arg;

	if (im->study_id != p->study)
		study_header(p, im);
	fputs("<tr>", p->f);
	preview_cell(p, im);
	image_cell(p->f, im);
	fputs("<td>", p->f);
	esc(p->f, im->received_at + (strlen(im->received_at) > 11 ? 11 : 0));
	fputs("<br>from ", p->f);
	esc(p->f, *im->source_aet ? im->source_aet : "?");
	fputs("</td>", p->f);
	store_cell(p, im);
	cloud_cell(p->f, im);
	qr_cell(p->f, im);
	fputs("</tr>\n", p->f);
	return 0;
}

static void
studies_section(struct page *p, sqlite3 *db, const char *why)
{
	struct err e = { 0 };
	int n;

	fputs("<h2 id=\"studies\">Studies received</h2>\n", p->f);
	if (db == NULL) {
		bad(p->f, "", why);
		return;
	}
	n = pacs_day_each(db, p->day, image_row, p, &e);
	if (p->study != 0)
		fputs("</table>\n", p->f);
	if (n == -1) {
		bad(p->f, "pacs.db cannot be read: ", e.msg);
	} else if (n == 0)
		fputs("<p>No image was received on this day.</p>\n", p->f);
	else
		fprintf(p->f, "<p>%d stud%s, %d image%s, %d preview%s "
		    "shown.</p>\n", p->studies, p->studies == 1 ? "y" : "ies",
		    n, n == 1 ? "" : "s", p->previews,
		    p->previews == 1 ? "" : "s");
}

/* -------------------------------------------------------------- cloud */

static void
upload_counts(FILE *f, sqlite3 *db)
{
	const struct { const char *what; size_t off; } parts[] = {
		{ "sent", offsetof(struct upload_state_count, complete) },
		{ "queued", offsetof(struct upload_state_count, pending) },
		{ "uploading", offsetof(struct upload_state_count, uploading) },
		{ "retrying", offsetof(struct upload_state_count, waiting) },
		{ "waiting for a worklist item",
		    offsetof(struct upload_state_count, unmatched) },
		{ "held", offsetof(struct upload_state_count, held) },
		{ "failed", offsetof(struct upload_state_count, failed) },
		{ "refused by the Manage API",
		    offsetof(struct upload_state_count, refused) },
		{ "released", offsetof(struct upload_state_count, released) },
		{ "kept local", offsetof(struct upload_state_count, local) },
	};
	struct upload_state_count c;
	struct err e = { 0 };

	if (db == NULL || upload_state_count(db, NULL, &c, &e) == -1)
		return;
	fputs("<p>All images by upload state:", f);
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		fprintf(f, "%s %lld %s", i ? "," : "",
		    *(const long long *)((const char *)&c + parts[i].off),
		    parts[i].what);
	fputs(".<br>Last upload: ", f);
	esc(f, *c.last_upload ? c.last_upload : "none");
	if (*c.last_error) {
		fputs("; last error: <span class=\"bad\">", f);
		esc(f, c.last_error);
		fputs("</span>", f);
	}
	fputs("</p>\n", f);
}

static void
cloud_section(struct page *p, sqlite3 *db)
{
	struct job_queue_kind k[JOB_NKINDS];
	struct err e = { 0 };
	time_t now = time(NULL);
	char age[32];

	fputs("<h2 id=\"cloud\">Cloud queue</h2>\n<p>", p->f);
	fprintf(p->f, "Images to the Manage API: %s; events over the relay: "
	    "%s.</p>\n", config_cloud_images() ? "configured" :
	    "<span class=\"warn\">not configured (images are kept, HELD)</span>",
	    config_cloud_events() ? "configured" : "not configured");
	upload_counts(p->f, db);
	if (job_queue_scan(p->c, k, &e) == -1) {
		bad(p->f, "The relay spool cannot be read: ", e.msg);
		return;
	}
	fputs("<table><tr><th>Job kind</th><th>Pending</th><th>Failed</th>"
	    "<th>Oldest waiting</th><th>Its attempts</th><th>Its last error</th>"
	    "</tr>\n", p->f);
	for (int i = 0; i < JOB_NKINDS; i++) {
		fputs("<tr>", p->f);
		cell(p->f, job_kind_name(i));
		cell_num(p->f, k[i].pending);
		fprintf(p->f, "<td%s>%ld</td>", k[i].failed ? " class=\"bad\"" :
		    "", k[i].failed);
		if (k[i].oldest != 0)
			screen_age((long long)(now - k[i].oldest), age,
			    sizeof age);
		cell(p->f, k[i].oldest != 0 ? age : "");
		if (k[i].oldest != 0)
			cell_num(p->f, k[i].oldest_attempts);
		else
			cell(p->f, "");
		cell(p->f, k[i].oldest_error);
		fputs("</tr>\n", p->f);
	}
	fputs("</table>\n", p->f);
}

/* --------------------------------------------------------- quarantine */

static int
quarantine_row(const struct quarantine_record *r, void *arg)
{
	struct page *p = arg;
	char from[160], size[32];

	snprintf(from, sizeof from, "%s at %s", *r->calling_aet ?
	    r->calling_aet : "?", *r->peer ? r->peer : "?");
	fputs("<tr>", p->f);
	cell(p->f, r->name);
	cell(p->f, r->received_at);
	cell(p->f, from);
	size_text(r->size, size, sizeof size);
	cell(p->f, size);
	fputs("<td class=\"bad\">", p->f);
	esc(p->f, r->reason);
	fputs("</td>", p->f);
	cell(p->f, r->accession_number);
	fputs("</tr>\n", p->f);
	return 0;
}

static void
quarantine_section(struct page *p)
{
	struct quarantine q;
	struct err e = { 0 };
	int n;

	fputs("<h2 id=\"quarantine\">Quarantine</h2>\n", p->f);
	if (quarantine_open(&q, p->c->quarantine_dir, &e) == -1) {
		bad(p->f, "", e.msg);
		return;
	}
	fputs("<table><tr><th>Entry</th><th>Received</th><th>From</th>"
	    "<th>Size</th><th>Reason</th><th>Accession</th></tr>\n", p->f);
	n = quarantine_list(&q, quarantine_row, p, &e);
	fputs("</table>\n", p->f);
	if (n == -1) {
		bad(p->f, "The quarantine cannot be read: ", e.msg);
	} else
		fprintf(p->f, "<p%s>%d file%s in quarantine "
		    "(gatewayctl quarantine).</p>\n", n ? " class=\"warn\"" : "",
		    n, n == 1 ? "" : "s");
}

/* --------------------------------------------------------------- page */

static void
page_head(struct page *p)
{
	const char *zone = getenv("WORKLIST_TIMEZONE");
	char made[32];

	local_time(time(NULL), "%Y-%m-%d %H:%M:%S", made, sizeof made);
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "\n<meta http-equiv=\"Content-Security-Policy\" content=\""
	    "default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n"
	    "<meta http-equiv=\"refresh\" content=\"60\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width\">\n"
	    "<title>", p->f);
	esc(p->f, p->c->pacs_aet);
	fprintf(p->f, " %s</title>\n<style>%s</style></head>\n<body>\n<h1>",
	    p->day, style);
	esc(p->f, p->c->pacs_aet);
	fprintf(p->f, ": %s</h1>\n<p class=\"muted\">", p->day);
	esc(p->f, zone != NULL && *zone ? zone : "local time");
	fprintf(p->f, "; made %s by gatewayctl report %s; the page reads "
	    "itself again every minute.  <a href=\"#alerts\">Alerts</a> "
	    "&middot; <a href=\"#worklist\">Worklist</a> &middot; "
	    "<a href=\"#studies\">Studies</a> &middot; <a href=\"#cloud\">"
	    "Cloud queue</a> &middot; <a href=\"#quarantine\">Quarantine</a>"
	    "</p>\n", made, GW_VERSION);
}

static int
page_write(struct page *p)
{
	struct err e = { 0 };
	sqlite3 *db = NULL;

	if (db_open_existing(&db, p->c->pacs_db_path, &e) == 0 &&
	    pacs_day_each(db, p->day, count_image, p, &e) == -1) {
		db_close(db);
		db = NULL;
	}
	if (p->failed)
		return -1;
	page_head(p);
	alerts_section(p);
	worklist_section(p);
	studies_section(p, db, e.msg);
	cloud_section(p, db);
	quarantine_section(p);
	fputs("</body></html>\n", p->f);
	if (db != NULL)
		db_close(db);
	return 0;
}

int
report_html_write(const struct config *c, const struct report_html_opts *o,
    const char *path, struct err *e)
{
	struct page p = { .c = c, .o = o, .e = e };
	char *buf = NULL;
	size_t len = 0;
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	if (o->date != NULL)
		snprintf(p.day, sizeof p.day, "%s", o->date);
	else if (localtime_r(&now, &tm) == NULL ||
	    strftime(p.day, sizeof p.day, "%Y-%m-%d", &tm) == 0)
		return err_set(e, EINVAL, "no local date");
	if ((p.f = open_memstream(&buf, &len)) == NULL)
		return err_sys(e, "report: open_memstream");
	rc = page_write(&p);
	if (fclose(p.f) == EOF && rc == 0)
		rc = err_set(e, ENOMEM, "report: out of memory");
	if (rc == 0)
		rc = fs_write_atomic(path, buf, len, e);
	free(buf);
	free(p.accs);
	return rc;
}
