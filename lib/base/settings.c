/*
 * settings: the one table of every setting the gateway reads, and the
 * checks made from it (see base/base.h).
 *
 * To add a setting: one row below (name, default, kind, range or
 * choices, flags, production's name for it, one line of doc), then read
 * it with getenv() after config_load(); t/0230 fails until gateway.env(5)
 * documents it and until every name the code reads has a row.
 */
#include "base/base.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DUR	SETTING_DURATION
#define S	SETTING_SECRET
#define NC	SETTING_NOCASE
#define IGN	SETTING_IGNORED
#define DAY	86400L
#define NOLIMIT	LONG_MAX

/* { name, default, kind, lo, hi, choices, flags, alias, doc } */
static const struct setting table[] = {
	/* where things are */
	{ "GATEWAY_DATA_DIR", "./var", SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "the data directory, made absolute" },
	{ "PACS_STORAGE_PATH", "$GATEWAY_DATA_DIR/store", SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "the content store" },
	{ "PACS_DB_PATH", "$GATEWAY_DATA_DIR/pacs.db", SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "the index of what was received" },
	{ "WORKLIST_DB_PATH", "$GATEWAY_DATA_DIR/worklist.db", SETTING_PATH, 0, 0, NULL, 0, "MWL_DB_PATH",
	  "the worklist database" },
	{ "GATEWAY_SPOOL_DIR", "$GATEWAY_DATA_DIR/spool", SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "the spools of the pipeline stages" },
	{ "GATEWAY_INCOMING_DIR", "$GATEWAY_DATA_DIR/incoming", SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "where storescp writes what it receives" },
	{ "GATEWAY_QUARANTINE_DIR", "$GATEWAY_DATA_DIR/quarantine", SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "files that could not be stored, each with its reason" },
	{ "GATEWAY_THUMBS_DIR", "$GATEWAY_DATA_DIR/thumbs", SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "the previews dcmthumb writes" },
	{ "GATEWAY_BACKUP_DIR", "$GATEWAY_DATA_DIR/backup", SETTING_PATH, 0, 0, NULL, 0, "BACKUP_PATH",
	  "backups of pacs.db and worklist.db" },
	{ "GATEWAY_ENV_FILE", NULL, SETTING_FILE, 0, 0, NULL, 0, NULL,
	  "the configuration file (default /etc/screening-gateway/gateway.env, else ./gateway.env)" },
	{ "GW_BIN", NULL, SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "where gatewayd finds the programs (default: beside it, or PATH)" },

	/* the DICOM ports */
	{ "PACS_AET", "SCREENING_PACS", SETTING_AET, 0, 0, NULL, 0, NULL,
	  "the storage AE title" },
	{ "PACS_PORT", "4244", SETTING_PORT, 0, 0, NULL, 0, NULL,
	  "the storage port" },
	{ "PACS_BIND", "0.0.0.0", SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "the address storescp-front listens on" },
	{ "PACS_ALLOWED_AETS", NULL, SETTING_AETS, 0, 0, NULL, 0, NULL,
	  "calling AE titles that may store, comma-separated; empty: any" },
	{ "PACS_ALLOWED_HOSTS", NULL, SETTING_HOSTS, 0, 0, NULL, 0, NULL,
	  "addresses or CIDR networks that may store; empty: any" },
	{ "PACS_TLS_PORT", NULL, SETTING_PORT, 0, 0, NULL, 0, NULL,
	  "DICOM TLS storage port beside the plain one; unset: none" },
	{ "WORKLIST_AET", "SCREENING_MWL", SETTING_AET, 0, 0, NULL, 0, "MWL_AET",
	  "the Modality Worklist and MPPS AE title" },
	{ "WORKLIST_PORT", "4243", SETTING_PORT, 0, 0, NULL, 0, "MWL_PORT",
	  "the worklist port (C-FIND, MPPS, C-ECHO)" },
	{ "WORKLIST_BIND", "0.0.0.0", SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "the address mwlscp listens on" },
	{ "WORKLIST_ALLOWED_AETS", NULL, SETTING_AETS, 0, 0, NULL, 0, NULL,
	  "calling AE titles mwlscp accepts; empty: any" },
	{ "WORKLIST_ALLOWED_HOSTS", NULL, SETTING_HOSTS, 0, 0, NULL, 0, NULL,
	  "addresses or CIDR networks allowed on the worklist port; empty: any" },
	{ "WORKLIST_TLS_PORT", NULL, SETTING_PORT, 0, 0, NULL, 0, NULL,
	  "DICOM TLS worklist port; unset: none" },
	{ "WORKLIST_CHARSET", "ISO_IR 100", SETTING_CHOICE, 0, 0, "ISO_IR 100|ISO_IR 192", 0, NULL,
	  "Specific Character Set of worklist responses" },
	{ "WORKLIST_STATION_AET", "ANY", SETTING_AET, 0, 0, NULL, 0, NULL,
	  "Scheduled Station AE Title shown for items the cloud sends without one (every station's)" },
	{ "WORKLIST_TIMEZONE", NULL, SETTING_ZONE, 0, 0, NULL, 0, NULL,
	  "the site's time zone (Europe/London, or UTC): modalities see local times and days; unset: the system's" },
	{ "WORKLIST_SHOW_FINISHED", "0", SETTING_BOOL, 0, 0, NULL, 0, NULL,
	  "1: worklist C-FIND also offers COMPLETED and DISCONTINUED items" },
	{ "QR_AET", "SCREENING_QR", SETTING_AET, 0, 0, NULL, 0, NULL,
	  "the Query/Retrieve and Storage Commitment AE title" },
	{ "QR_PORT", "4246", SETTING_PORT, 0, 0, NULL, 0, NULL,
	  "the Query/Retrieve port" },
	{ "QR_BIND", "0.0.0.0", SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "the address qrscp listens on" },
	{ "QR_ALLOWED_AETS", NULL, SETTING_AETS, 0, 0, NULL, 0, NULL,
	  "calling AE titles qrscp accepts; empty: any" },
	{ "QR_ALLOWED_HOSTS", NULL, SETTING_HOSTS, 0, 0, NULL, 0, NULL,
	  "addresses or CIDR networks allowed on the Q/R port; empty: any" },
	{ "QR_TLS_PORT", NULL, SETTING_PORT, 0, 0, NULL, 0, NULL,
	  "DICOM TLS Query/Retrieve port; unset: none" },
	{ "QR_DESTINATIONS", NULL, SETTING_FILE, 0, 0, NULL, 0, NULL,
	  "a file of 'AE host port [tls]' lines: C-MOVE destinations and commitment requesters" },
	{ "QR_COMMIT_RETRY_SECONDS", "30", SETTING_INT, 1, DAY, NULL, 0, NULL,
	  "seconds between tries of an undelivered commitment report" },
	{ "QR_COMMIT_RETRY_MAX_SECONDS", "3600", SETTING_INT, 1, 7 * DAY, NULL, 0, NULL,
	  "how long an undelivered commitment report is tried (tests)" },
	{ "QR_COMMIT_REPORT_DELAY_MS", "0", SETTING_INT, 0, 3600000, NULL, 0, NULL,
	  "a pause before each commitment report (tests)" },
	{ "GATEWAY_TLS_CERT", NULL, SETTING_FILE, 0, 0, NULL, 0, NULL,
	  "the gateway's certificate chain (PEM), for the TLS ports" },
	{ "GATEWAY_TLS_KEY", NULL, SETTING_FILE, 0, 0, NULL, S, NULL,
	  "its private key (PEM)" },
	{ "GATEWAY_TLS_CA", NULL, SETTING_FILE, 0, 0, NULL, 0, NULL,
	  "with it, clients on the TLS ports need a certificate this CA signed" },

	/* running */
	{ "LOG_LEVEL", "info", SETTING_CHOICE, 0, 0, "debug|info|warn|warning|error", NC, NULL,
	  "the least important log lines written" },
	{ "GATEWAY_SWEEP_INTERVAL_SECONDS", "600", SETTING_INT, 0, DAY, NULL, 0, NULL,
	  "how often files left in incoming/ are stored again; 0: never" },
	{ "GATEWAY_STOP_GRACE_SECONDS", "5", SETTING_INT, 0, 3600, NULL, 0, NULL,
	  "a stopping child's time between TERM and KILL" },
	{ "GATEWAY_DAILY_RESET", "1", SETTING_BOOL, 0, 0, NULL, 0, NULL,
	  "1: back up worklist.db and clear finished and past items at midnight" },
	{ "GATEWAY_ALERT_INTERVAL_SECONDS", "300", SETTING_INT, 0, DAY, NULL, 0, NULL,
	  "how often the alert conditions are checked; 0: never" },
	{ "STATUS_PENDING_WARN_SECONDS", "900", SETTING_INT, 1, 30 * DAY, NULL, 0, NULL,
	  "status --check warns of a job waiting for the cloud this long" },
	{ "STATUS_PENDING_CRIT_SECONDS", "3600", SETTING_INT, 1, 30 * DAY, NULL, 0, NULL,
	  "... and is critical from this long" },
	{ "STATUS_RESTART_LOOP_COUNT", "5", SETTING_INT, 2, 8, NULL, 0, NULL,
	  "a child that exits this often within STATUS_RESTART_LOOP_SECONDS is in a restart loop" },
	{ "STATUS_RESTART_LOOP_SECONDS", "600", SETTING_INT, 1, DAY, NULL, 0, NULL,
	  "the window of STATUS_RESTART_LOOP_COUNT" },
	{ "GATEWAY_REPORT_HTML", NULL, SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "the day's page gatewayd keeps written (gatewayctl report); unset: none" },
	{ "GATEWAY_REPORT_INTERVAL_SECONDS", "60", SETTING_INT, 1, DAY, NULL, 0, NULL,
	  "how often GATEWAY_REPORT_HTML is written again" },
	{ "GATEWAY_REPORT_NAMES", "0", SETTING_BOOL, 0, 0, NULL, 0, NULL,
	  "1: patient names on the page gatewayd writes" },
	{ "METRICS_TEXTFILE_DIR", NULL, SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "node_exporter's textfile directory: gatewayd writes screening_gateway.prom there; unset: none" },
	{ "METRICS_INTERVAL_SECONDS", "60", SETTING_INT, 1, DAY, NULL, 0, NULL,
	  "how often the metrics file is written again" },

	/* retention and disk safety */
	{ "PACS_RETENTION_DAYS", "30", SETTING_INT, 0, 36500, NULL, 0, NULL,
	  "days a confirmed image keeps its store file" },
	{ "PACS_DISK_LOW_WATERMARK", "15", SETTING_INT, 0, 95, NULL, 0, NULL,
	  "percent free below which confirmed images are freed early; 0: never" },
	{ "PACS_PURGE_INTERVAL", "3600", DUR, 1, 30 * DAY, NULL, 0, NULL,
	  "time between purge rounds (seconds, or with s, m, h, d)" },
	{ "PACS_DISK_MIN_FREE", "2GiB", SETTING_SIZE, 0, 0, NULL, 0, NULL,
	  "the disk floor: below it new storage associations are refused (transient); 0: off" },
	{ "GATEWAY_DISK_CHECK_SECONDS", "5", SETTING_INT, 1, 3600, NULL, 0, NULL,
	  "how often the disk floor is checked" },
	{ "PACS_VERIFY_MAX_MB_PER_SECOND", "50", SETTING_INT, 0, 100000, NULL, 0, NULL,
	  "the weekly scrub's read rate; 0: unlimited" },
	{ "PACS_DB_BACKUPS", "7", SETTING_INT, 1, 10000, NULL, 0, "MAX_BACKUPS",
	  "daily backups of pacs.db kept" },

	/* the cloud: who we are */
	{ "ENVIRONMENT", NULL, SETTING_TEXT, 0, 0, NULL, NC, NULL,
	  "prod: production's rules (managed identity only, no SAS or static tokens)" },
	{ "CLOUD_API_RESOURCE", NULL, SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "the Manage API's Entra ID application (its appId): its tokens come from the managed identity" },
	{ "IDENTITY_ENDPOINT", NULL, SETTING_URL, 0, 0, NULL, 0, NULL,
	  "Azure Arc's HIMDS token endpoint (set by the Arc agent; found by its installation when not)" },
	{ "AZURE_ARC_TOKENS_DIR", "/var/opt/azcmagent/tokens", SETTING_PATH, 0, 0, NULL, 0, NULL,
	  "the only directory an Arc HIMDS challenge's key file is read from" },
	{ "AZURE_IMDS_ENDPOINT", "http://169.254.169.254", SETTING_URL, 0, 0, NULL, 0, NULL,
	  "an Azure VM's instance metadata service" },
	{ "AZURE_TENANT_ID", NULL, SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "client credentials (outside Azure, not prod): the Entra ID tenant" },
	{ "AZURE_CLIENT_ID", NULL, SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "client credentials: the application (client) ID" },
	{ "AZURE_CLIENT_SECRET", NULL, SETTING_TEXT, 0, 0, NULL, S, NULL,
	  "client credentials: its secret" },
	{ "AZURE_CLIENT_CERTIFICATE_PATH", NULL, SETTING_FILE, 0, 0, NULL, 0, NULL,
	  "client credentials: its certificate and unencrypted key (PEM), instead of a secret" },
	{ "AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com", SETTING_URL, 0, 0, NULL, 0, NULL,
	  "the Entra ID authority client credentials ask" },

	/* the cloud: the relay */
	{ "AZURE_RELAY_NAMESPACE", NULL, SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "the Azure Relay namespace (e.g. example.servicebus.windows.net)" },
	{ "AZURE_RELAY_HYBRID_CONNECTION", NULL, SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "the hybrid connection the cloud sends its actions to" },
	{ "AZURE_RELAY_EVENTS_HYBRID_CONNECTION", NULL, SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "the hybrid connection events go to; unset: no events" },
	{ "AZURE_RELAY_KEY_NAME", "RootManageSharedAccessKey", SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "the shared access policy, for SAS tokens (not in production)" },
	{ "AZURE_RELAY_SHARED_ACCESS_KEY", NULL, SETTING_TEXT, 0, 0, NULL, S, NULL,
	  "its key (not in production)" },
	{ "AZURE_RELAY_TOKEN_COMMAND", NULL, SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "a command that prints a relay bearer token" },
	{ "AZURE_RELAY_ENDPOINT", NULL, SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "host:port to connect to instead of the namespace (the local emulator)" },
	{ "RELAY_TOKEN_TTL_SECONDS", "3600", SETTING_INT, 10, DAY, NULL, 0, NULL,
	  "lifetime of a SAS token" },
	{ "RELAY_TOKEN_IN_HEADER", "0", SETTING_BOOL, 0, 0, NULL, 0, NULL,
	  "1: the relay token in a header rather than in the URL" },
	{ "RELAY_PING_SECONDS", "20", SETTING_INT, 1, 3600, NULL, 0, NULL,
	  "how often relaylisten PINGs its control channel" },
	{ "RELAY_PING_TIMEOUT_SECONDS", "20", SETTING_INT, 1, 3600, NULL, 0, NULL,
	  "no PONG within this: the channel is dropped and opened again" },
	{ "RELAY_SELF_ECHO", "auto", SETTING_CHOICE, 0, 0, "auto|on|off", 0, NULL,
	  "the echo relaylisten sends itself: auto (where its credential may send: a SAS key, a token command), on, off" },
	{ "RELAY_PROBE_SECONDS", "120", SETTING_INT, 0, DAY, NULL, 0, NULL,
	  "how often relaylisten proves its listener by a self-echo; 0: never" },

	/* the cloud: the Manage API and relaysend */
	{ "CLOUD_API_ENDPOINT", NULL, SETTING_URL, 0, 0, NULL, 0, NULL,
	  "the Manage API for images (https://host/api/v1/dicom); unset: images are HELD" },
	{ "CLOUD_API_MAX_MB", "100", SETTING_INT, 1, 1048576, NULL, 0, NULL,
	  "the largest file the Manage API takes, in MiB (production's 100): a larger one is not sent" },
	{ "CLOUD_API_TOKEN", NULL, SETTING_TEXT, 0, 0, NULL, S, NULL,
	  "a static Manage API token (not in production)" },
	{ "CLOUD_API_TOKEN_COMMAND", NULL, SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "a command that prints a Manage API token" },
	{ "GATEWAY_CA_FILE", NULL, SETTING_FILE, 0, 0, NULL, 0, NULL,
	  "an extra CA bundle (PEM) added to the system's" },
	{ "RELAY_NO_MATCH", "wait", SETTING_CHOICE, 0, 0, "wait|report", 0, NULL,
	  "an image no worklist item claims: wait (UNMATCHED) or report (failed)" },
	{ "RELAY_RETRY_MAX_SECONDS", "600", SETTING_INT, 1, DAY, NULL, 0, NULL,
	  "the longest pause between retries" },
	{ "RELAY_SUMMARY_SECONDS", "300", SETTING_INT, 0, DAY, NULL, 0, NULL,
	  "while the cloud cannot be reached, how often relaysend logs what waits; 0: never" },
	{ "RELAY_CONNECT_TIMEOUT_SECONDS", "15", SETTING_INT, 1, 3600, NULL, 0, NULL,
	  "upload connect timeout" },
	{ "RELAY_LOW_SPEED_SECONDS", "60", SETTING_INT, 1, 3600, NULL, 0, NULL,
	  "an upload slower than 1 KiB/s for this long is abandoned" },
	{ "RELAY_UPLOAD_TIMEOUT_SECONDS", "1800", SETTING_INT, 0, DAY, NULL, 0, NULL,
	  "the longest one upload may take; 0: none" },
	{ "RELAY_MAX_SEND_BYTES_PER_SECOND", "0", SETTING_INT, 0, 2000000000, NULL, 0, NULL,
	  "bandwidth cap of the uploads; 0: none" },
	{ "RELAY_JOBS", "1", SETTING_INT, 1, 64, NULL, 0, NULL,
	  "uploads in flight at once" },
	{ "RELAY_UPLOAD_MODE", "reduced", SETTING_CHOICE, 0, 0, "reduced|original|lossless", 0, NULL,
	  "how images are uploaded: reduced (production's JPEG 2000 copy), original or lossless" },
	{ "DICOM_THUMBNAIL_SIZE", "400", SETTING_INT, 16, 16384, NULL, 0, NULL,
	  "the longest side of a reduced upload, in pixels (production's name)" },
	{ "DICOM_COMPRESSION_RATIO", "15", SETTING_INT, 2, 1000, NULL, 0, NULL,
	  "the JPEG 2000 ratio of a reduced upload (production's name)" },
	{ "RELAY_UPLOAD_CLASSES", "mammo", SETTING_CHOICE, 0, 0, "mammo|all", 0, NULL,
	  "which images go to the cloud: mammo (MG for presentation and processing) or all; the rest stay LOCAL" },
	{ "MAX_UPLOAD_RETRIES", "3", SETTING_INT, 1, 1000, NULL, 0, NULL,
	  "500 answers before an image is given up (production's name)" },
	{ "RELAY_500_SPREAD_SECONDS", "600", SETTING_INT, 0, DAY, NULL, 0, NULL,
	  "the least time the tries after 500 answers are spread over" },
	{ "RELAY_UPLOAD_POLICY", "all", SETTING_CHOICE, 0, 0, "all|on_request", 0, NULL,
	  "which images go up: all, or only those the cloud asks for" },

	/* the programs others are replaced by, for tests */
	{ "PIXEL_DCMDJPEG", "dcmdjpeg", SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "the program that decodes JPEG lossless and 12-bit JPEG (dcmtk's)" },
	{ "PIXEL_DCMDJPLS", "dcmdjpls", SETTING_TEXT, 0, 0, NULL, 0, NULL,
	  "the program that decodes the JPEG-LS CharLS refuses (dcmtk's)" },

	/* production's names with no use here: accepted, never an error */
	{ "UPLOAD_POLL_INTERVAL", NULL, SETTING_TEXT, 0, 0, NULL, IGN, NULL,
	  "production's upload polling: relaysend is woken by each job instead" },
	{ "UPLOAD_BATCH_SIZE", NULL, SETTING_TEXT, 0, 0, NULL, IGN, NULL,
	  "production's upload batch: see RELAY_JOBS" },
	{ "LOG_FORMAT", NULL, SETTING_TEXT, 0, 0, NULL, IGN, NULL,
	  "production's Python log format: every line here is logfmt" },
	{ "APPLICATIONINSIGHTS_CONNECTION_STRING", NULL, SETTING_TEXT, 0, 0, NULL, IGN | S, NULL,
	  "production's telemetry: logs go to the journal (README: Azure Monitor)" },
	{ "MWL_HOST", NULL, SETTING_TEXT, 0, 0, NULL, IGN, NULL,
	  "production's emulator: modality-emu takes --host" },
	{ "PACS_HOST", NULL, SETTING_TEXT, 0, 0, NULL, IGN, NULL,
	  "production's emulator: modality-emu takes --host" },
	{ "SAMPLE_IMAGES_PATH", NULL, SETTING_TEXT, 0, 0, NULL, IGN, NULL,
	  "production's emulator: modality-emu makes its own images" },
	{ "EMULATED_PROCEDURE_DURATION_SECONDS", NULL, SETTING_TEXT, 0, 0, NULL, IGN, NULL,
	  "production's emulator" },
};

#define NSETTINGS	(sizeof table / sizeof table[0])

size_t
settings_count(void)
{
	return NSETTINGS;
}

const struct setting *
settings_at(size_t i)
{
	return i < NSETTINGS ? &table[i] : NULL;
}

const struct setting *
settings_find(const char *name)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

const struct setting *
settings_find_alias(const char *name)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (table[i].alias != NULL && strcmp(table[i].alias, name) == 0)
			return &table[i];
	return NULL;
}

/* A whole number with an optional unit from units[] (each "SUFFIX=N"
 * multiplies by N); 0, or -1. */
static int
number_with_unit(const char *v, const char *const *units, long long *out)
{
	char *end;
	long long n, mul = 1;

	while (*v == ' ')
		v++;
	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0)
		return -1;
	while (*end == ' ')
		end++;
	if (*end != '\0') {
		size_t i;

		for (i = 0; units[i] != NULL; i++) {
			const char *eq = strchr(units[i], '=');

			if ((size_t)(eq - units[i]) == strlen(end) &&
			    strncmp(units[i], end, strlen(end)) == 0) {
				mul = atoll(eq + 1);
				break;
			}
		}
		if (units[i] == NULL)
			return -1;
	}
	if (n > LLONG_MAX / mul)
		return -1;
	*out = n * mul;
	return 0;
}

int
settings_parse_size(const char *v, long long *bytes)
{
	static const char *const units[] = {
		"B=1", "K=1024", "k=1024", "KB=1024", "KiB=1024",
		"M=1048576", "MB=1048576", "MiB=1048576",
		"G=1073741824", "GB=1073741824", "GiB=1073741824",
		"T=1099511627776", "TB=1099511627776", "TiB=1099511627776",
		NULL
	};

	return number_with_unit(v, units, bytes);
}

int
settings_parse_duration(const char *v, long long *seconds)
{
	static const char *const units[] = {
		"s=1", "m=60", "h=3600", "d=86400", NULL
	};

	return number_with_unit(v, units, seconds);
}

/* An AE title: 1 to 16 characters of the default repertoire, no
 * backslash, not only spaces. */
static int
valid_aet(const char *s, size_t n)
{
	int blank = 1;

	if (n == 0 || n > 16)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e || c == '\\')
			return 0;
		if (c != ' ')
			blank = 0;
	}
	return !blank;
}

static int
has_control(const char *v)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v < 0x20)
			return 1;
	return 0;
}

/* v among "a|b|c": 0, or -1. */
static int
in_choices(const struct setting *s, const char *v)
{
	const char *p = s->choices;
	size_t n = strlen(v);

	while (p != NULL && *p != '\0') {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && ((s->flags & SETTING_NOCASE) ?
		    strncasecmp(p, v, n) == 0 : strncmp(p, v, n) == 0))
			return 0;
		p = bar ? bar + 1 : NULL;
	}
	return -1;
}

static void
choices_in_words(const struct setting *s, char *out, size_t outsz)
{
	size_t j = 0;

	for (const char *p = s->choices; *p != '\0' && j + 8 < outsz; p++) {
		if (*p == '|') {
			out[j++] = ',';
			out[j++] = ' ';
		} else
			out[j++] = *p;
	}
	out[j] = '\0';
}

int
settings_check_value(const struct setting *s, const char *v,
    struct err *e)
{
	char words[256];
	long long n;

	if (s->flags & SETTING_IGNORED)
		return 0;
	if (*v == '\0')
		return 0;	/* empty is unset: the default */
	if (has_control(v))
		return err_set(e, EINVAL, "%s: the value has a control "
		    "character (a newline?)", s->name);
	switch (s->kind) {
	case SETTING_TEXT:
	case SETTING_PATH:
	case SETTING_FILE:
	case SETTING_HOSTS:
		return 0;
	case SETTING_AET:
		if (!valid_aet(v, strlen(v)))
			return err_set(e, EINVAL, "%s: \"%s\" is not an AE "
			    "title (1 to 16 characters, no backslash)",
			    s->name, v);
		return 0;
	case SETTING_AETS:
		for (const char *p = v; *p != '\0';) {
			const char *comma = strchr(p, ',');
			size_t len = comma ? (size_t)(comma - p) : strlen(p);

			while (len > 0 && *p == ' ')
				p++, len--;
			while (len > 0 && p[len - 1] == ' ')
				len--;
			if (!valid_aet(p, len))
				return err_set(e, EINVAL, "%s: \"%s\" is not a "
				    "comma-separated list of AE titles (1 to "
				    "16 characters each)", s->name, v);
			if (comma == NULL)
				break;
			p = comma + 1;
		}
		return 0;
	case SETTING_PORT:
		if (number_with_unit(v, (const char *const[]){ NULL }, &n) ==
		    -1 || n < 1 || n > 65535)
			return err_set(e, EINVAL, "%s: \"%s\" is not a TCP port "
			    "(1 to 65535)", s->name, v);
		return 0;
	case SETTING_INT:
		if (number_with_unit(v, (const char *const[]){ NULL }, &n) ==
		    -1 || n < s->lo || n > s->hi) {
			if (s->hi == NOLIMIT)
				return err_set(e, EINVAL, "%s: \"%s\" is not a "
				    "whole number from %ld", s->name, v, s->lo);
			return err_set(e, EINVAL, "%s: \"%s\" is not a whole "
			    "number from %ld to %ld", s->name, v, s->lo, s->hi);
		}
		return 0;
	case SETTING_DURATION:
		if (settings_parse_duration(v, &n) == -1 || n < s->lo ||
		    n > s->hi)
			return err_set(e, EINVAL, "%s: \"%s\" is not a time "
			    "from %ld to %ld seconds (a number, or with s, m, "
			    "h or d)", s->name, v, s->lo, s->hi);
		return 0;
	case SETTING_SIZE:
		if (settings_parse_size(v, &n) == -1)
			return err_set(e, EINVAL, "%s: \"%s\" is not a size "
			    "(bytes, or a number with K, M, G or T)", s->name, v);
		return 0;
	case SETTING_BOOL:
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
			return err_set(e, EINVAL, "%s: \"%s\" is not 0 or 1",
			    s->name, v);
		return 0;
	case SETTING_CHOICE:
		if (in_choices(s, v) == -1) {
			choices_in_words(s, words, sizeof words);
			return err_set(e, EINVAL, "%s: \"%s\" is not one of: %s",
			    s->name, v, words);
		}
		return 0;
	case SETTING_ZONE:
		if (strcmp(v, "UTC") != 0 && settings_zone_exists(v) == -1)
			return err_set(e, EINVAL, "%s: no time zone \"%s\" in "
			    "the tz database (an IANA name such as "
			    "Europe/London, or UTC; is tzdata installed?)",
			    s->name, v);
		return 0;
	case SETTING_URL:
		if (strncmp(v, "https://", 8) != 0 &&
		    strncmp(v, "http://", 7) != 0)
			return err_set(e, EINVAL, "%s: \"%s\" is not a URL "
			    "(https://...)", s->name, v);
		return 0;
	}
	return 0;
}

/* 0 when name is a zone of the tz database: a TZif file below TZDIR. */
int
settings_zone_exists(const char *name)
{
	const char *dir = getenv("TZDIR");
	char path[PATH_MAX], magic[4];
	struct stat sb;
	FILE *f;
	int ok;

	if (*name == '\0' || *name == '/' || strstr(name, "..") != NULL ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789/_+-") != strlen(name))
		return -1;
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir != NULL &&
	    *dir != '\0' ? dir : "/usr/share/zoneinfo", name) >= sizeof path ||
	    stat(path, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (f = fopen(path, "rb")) == NULL)
		return -1;
	ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
	fclose(f);
	return ok ? 0 : -1;
}

/* Levenshtein distance, capped: enough to tell a typo. */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins) :
			    (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
	}
	return prev[lb];
}

const struct setting *
settings_nearest(const char *name)
{
	const struct setting *best = NULL;
	size_t bd = 4;	/* at most 3 edits away */

	for (size_t i = 0; i < NSETTINGS; i++) {
		size_t d = distance(name, table[i].name);

		if (d < bd) {
			bd = d;
			best = &table[i];
		}
	}
	return best;
}

int
settings_default(const struct setting *s, const char *data_dir, char *out,
    size_t outsz)
{
	const char *d = s->dflt;
	static const char data[] = "$GATEWAY_DATA_DIR";
	int n;

	if (d == NULL) {
		if (outsz > 0)
			out[0] = '\0';
		return 0;
	}
	if (strncmp(d, data, sizeof data - 1) == 0)
		n = snprintf(out, outsz, "%s%s", data_dir, d + sizeof data - 1);
	else
		n = snprintf(out, outsz, "%s", d);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}
