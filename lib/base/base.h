/*
 * base: the ground floor: errors, logs, durable file steps, child
 * processes, SQLite, and the settings (gateway.env).
 *
 * Layer 0.  The one public header of lib/base/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: err, log, fsutil, runstate,
 * probe, proc, db, config.
 */
#ifndef GW_BASE_H
#define GW_BASE_H

#include <limits.h>
#include <sqlite3.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/*
 * err: the error a library function hands back to its caller.
 *
 * Every lib/ function that can fail returns -1 (or NULL) and, when the
 * caller passed a non-NULL struct err, fills it with one line a person can
 * act on ("truncated element (0028,0010) at offset 812").  Library code
 * never prints and never exits: programs decide what to do with the error.
 */

struct err {
	int code;		/* errno, or a module's own code; 0 = none */
	char msg[512];
};

/* Sets e (if not NULL) to the formatted message; returns -1 for tail calls. */
int err_set(struct err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As err_set, with ": strerror(errno)" appended and code = errno. */
int err_sys(struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message: "prefix: old message". */
int err_wrap(struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * log: one logfmt line per event on stderr.
 *
 *   log_info("stored", "sop_instance_uid=%s size=%zu", uid, size);
 *   -> ts=2026-11-27T23:30:00.123Z level=info prog=storescp-hook msg=stored sop_instance_uid=1.2.3 size=812
 *
 * The level threshold comes from LOG_LEVEL (debug, info, warn, error;
 * default info).  The caller formats the key=value pairs; values with
 * spaces must be quoted by the caller (log_quote helps).  Never pass
 * patient demographics (names, Patient ID / NHS number, birth date):
 * UIDs, accession numbers, sizes, durations and file names are fine.
 * A log line is written with one write(2) so concurrent processes sharing
 * stderr do not interleave.  The only state is the program name and level,
 * set once by log_init() from main().
 */

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct log_ctx {
	const char *prog;
	enum log_level level;
};

/* Set the program name and read LOG_LEVEL. */
void log_init(const char *prog);

/* Take LOG_LEVEL again (config_load() may have set it from gateway.env). */
void log_level_from_env(void);

void log_msg(enum log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) log_msg(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_msg(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_msg(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_msg(LOG_ERROR, msg, __VA_ARGS__)

/* An error line: msg and error="<e->msg>". */
void log_err(const char *msg, const struct err *e);

/* Copy s into out as a logfmt value: quoted and escaped when needed. */
const char *log_quote(const char *s, char *out, unsigned outsz);

/*
 * fsutil: the few file-system steps every durable write in the gateway is
 * made of, done the qmail way: write to a temporary name in the same
 * directory, fsync the file, rename it into place, fsync the directory.
 * A reader never sees a half-written file; after a crash either the old
 * state or the new one is on disk.
 */

/* mkdir -p with mode 0755; existing directories are fine. */
int fs_mkdirs(const char *path, struct err *e);

/* fsync the directory at path. */
int fs_sync_dir(const char *path, struct err *e);

/* fsync the file at path (its data and metadata). */
int fs_sync_file(const char *path, struct err *e);

/* syncfs: everything written to the file system that holds path (a
 * file or directory) reaches the disk: one flush for many files. */
int fs_sync_fs(const char *path, struct err *e);

/* fsync the directory that contains path. */
int fs_sync_parent(const char *path, struct err *e);

/* Write len bytes to fd, retrying short writes and EINTR. */
int fs_write_all(int fd, const void *buf, size_t len, struct err *e);

/* Atomically replace path with buf: tmp file beside it, fsync, rename,
 * fsync the directory. */
int fs_write_atomic(const char *path, const void *buf, size_t len,
    struct err *e);

/* Read a whole small file (at most maxlen bytes) into a malloc'd,
 * NUL-terminated buffer. */
int fs_read_small(const char *path, size_t maxlen, char **out, size_t *len,
    struct err *e);

/* Copy src to dst durably (dst written as tmp + fsync + rename). */
int fs_copy_durable(const char *src, const char *dst, struct err *e);

/*
 * Could user uid create a file in dir (write and search on it)?  1 yes;
 * 0 no, with why in e (it does not exist, is on a read-only file system,
 * or its permission bits refuse uid, its group or its supplementary
 * groups); -1 when it cannot be told (e set).  For this process's own
 * user it asks access(2), so ACLs count; for another, the mode bits
 * (root may write anywhere but on a read-only file system).
 */
int fs_dir_writable_by(const char *dir, uid_t uid, struct err *e);

/*
 * runstate: the files in $GATEWAY_DATA_DIR/run/ by which a running
 * program tells the others about itself: key=value lines, one value a
 * line (control characters become spaces), never a secret and never
 * patient data; times ISO 8601 UTC ("2026-11-28T01:29:00Z"), "" for
 * none.  The one read/write pair for all of them: a writer builds the
 * whole text (runstate_put) and replaces the file at once (a temporary
 * name beside it, renamed), so a reader never sees half a file.  No
 * fsync: they describe running processes, which write them again after
 * a crash, and a writer's loop must not wait on a busy disk.  Each file has one owner, its only writer; the owner's
 * subsystem holds the typed reader beside the writer:
 *
 *   file                  written by                  read through
 *   run/gatewayd.pid      gatewayd (sh)               ops (supervisor)
 *   run/children, timers  gatewayd (sh)               ops (supervisor)
 *   run/NAME.state        gatewayd, per child and     ops (supervisor)
 *                         timed job (sh: write_state,
 *                         the same format)
 *   run/storage.state     storescp-front              archive (floor_state)
 *   run/qr.state          qrscp                       qr (qr_status)
 *   run/qr-move.PID       qrscp, one per retrieval    qr (qr_status)
 *   run/relay.state       relaylisten                 cloud (relay_state)
 *   run/delivery.state    relaysend (its workers      cloud (send_state)
 *                         merge under a lock)
 *   run/alert.NAME        gatewayctl alerts           ops (alerts)
 *   run/store.lock        a lock, no content: dcmpurge exclusive, qrscp
 *                         shared (archive/purge)
 *
 * A program's own file is never named after a child (gatewayd's
 * run/relaysend.state is its child relaysend's supervision record; what
 * relaysend tells is run/delivery.state).
 *
 * Memory: struct runstate is the caller's (RUNSTATE_MAX of text).
 */

#define RUNSTATE_MAX	8192
#define RUNSTATE_TIME	32	/* "2026-11-28T01:29:00Z" and its NUL */

struct runstate {
	char text[RUNSTATE_MAX];
	size_t len;
	int overflow;		/* a put did not fit: the write refuses */
};

void runstate_init(struct runstate *s);

/* Add key=value (printf); a value is made one line. */
void runstate_put(struct runstate *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Add key=<ISO 8601 time>, or key= when t is 0. */
void runstate_put_time(struct runstate *s, const char *key, time_t t);

/* Replace run/<name> (name: "relay.state") with s; run/ must exist. */
int runstate_write(const char *data_dir, const char *name,
    const struct runstate *s, struct err *e);

/* Read run/<name>: 0; 1 when there is no such file (s empty); -1 when
 * it cannot be read (e: EACCES for a user who may not, ...). */
int runstate_read(const char *data_dir, const char *name, struct runstate *s,
    struct err *e);

/* The same for a key=value file elsewhere (an association's .sender). */
int runstate_read_path(const char *path, struct runstate *s, struct err *e);

/* run/<name> under data_dir into out: 0, or -1 (too long). */
int runstate_path(const char *data_dir, const char *name, char *out,
    size_t outsz, struct err *e);

/* A value into out ("" when absent): 0 found, -1 absent or cut. */
int runstate_get(const struct runstate *s, const char *key, char *out,
    size_t outsz);

/* A whole number, or dflt when absent or not one. */
long long runstate_get_ll(const struct runstate *s, const char *key,
    long long dflt);

/* A time, or 0 when absent or not one. */
time_t runstate_get_time(const struct runstate *s, const char *key);

/* t as ISO 8601 UTC ("" for 0), and back (fractions and a +hh:mm zone
 * accepted): 0, or -1 when s is not such a time. */
void runstate_time_text(time_t t, char out[RUNSTATE_TIME]);
int runstate_time_parse(const char *s, time_t *out);

/* A process pid exists (a process of another user counts). */
int runstate_pid_alive(long pid);

/*
 * probe: whether something takes TCP connections at host:port (a name or
 * an address, any of its addresses), all within timeout_ms: 0 when one
 * connect succeeded, else the errno of the last try (ECONNREFUSED,
 * ETIMEDOUT; EHOSTUNREACH when the name does not resolve).  The
 * connection is closed at once; nothing is sent.
 */
int probe_tcp(const char *host, const char *port, int timeout_ms);

/*
 * proc: run a helper program with a deadline and take what it prints
 * (the token command, mwlsync apply for relaylisten).
 *
 * Guarantees: the child runs in its own process group; when it overruns
 * the deadline or prints too much, the whole group is killed and reaped.
 * Input is fed through a pipe and output read through another, both
 * polled, so neither side can block the other; nothing touches the disk.
 *
 * Never: prints, logs, exits, or reaps children other than its own (the
 * caller must not ignore SIGCHLD, and ignores SIGPIPE when it gives
 * input: a child may exit without reading it).
 */

/*
 * Run argv (argv[0] found in $PATH) with in (inlen bytes; NULL: stdin is
 * /dev/null) on its stdin, its stdout NUL-terminated in buf (less than
 * bufsz bytes), stderr inherited.  0 when it ended in time, with its
 * wait status in *status; -1 with e set (cannot start, timed out, output
 * of bufsz - 1 bytes or more).
 */
int proc_run(char *const argv[], const char *in, size_t inlen, char *buf,
    size_t bufsz, int timeout_ms, int *status, struct err *e);

/* 0 for a wait status of exit 0; else -1 with e saying how it ended. */
int proc_exit_ok(int status, struct err *e);

/* Milliseconds of the monotonic clock: for timeouts and durations. */
int64_t mono_ms(void);

/*
 * The stop signals of a program that finishes the work in hand and then
 * returns (a pipeline stage): SIGTERM, SIGINT and SIGHUP call handler
 * (which sets the program's flag), SIGPIPE is ignored (a peer that goes
 * away is an error to handle, not a death).  0, or -1 with errno.
 */
int proc_on_stop(void (*handler)(int));

/*
 * db: SQLite the same way everywhere.
 *
 * db_open() sets WAL, synchronous=FULL (a committed transaction survives a
 * power cut: a spool job is finished only after its commit), a busy
 * timeout, and foreign keys.  db_migrate() brings a database's schema up
 * to date from an embedded schema text made of sections that each start
 * with a line "-- version: N"; each section runs once, in its own
 * transaction, and PRAGMA user_version records the last one applied.  A
 * last section after a line "-- views" (the views, each dropped and
 * made again) runs with the last version applied, so a view is written
 * once, as it is now, and versions change only tables.  A database newer
 * than the program is refused, never touched.
 *
 * Schemas (sql/NAME.sql) are compiled in as strings: db_schema_pacs.
 */

#define DB_BUSY_TIMEOUT_MS 10000

extern const char db_schema_pacs[];
extern const char db_schema_worklist[];

int db_open(sqlite3 **out, const char *path, struct err *e);

/*
 * As db_open(), for a database that must already exist (hand-run tools,
 * servers that only read it): never creates one.  -1 with e saying
 * "no pacs.db at PATH: run gatewayd or dcmindex --init" (the file's own
 * name) when path does not exist, or why it cannot be opened.
 */
int db_open_existing(sqlite3 **out, const char *path, struct err *e);
void db_close(sqlite3 *db);

/* Remove a database file and its -wal and -shm (none may be open). */
void db_remove(const char *path);

/* Apply the schema's missing versions.  Returns the version now. */
int db_migrate(sqlite3 *db, const char *schema, struct err *e);

/* The highest "-- version: N" in a schema text. */
int db_schema_version(const char *schema);

/* The errno closest to the connection's last SQLite error: ENOSPC (full),
 * EBUSY (locked), ENOMEM, EROFS, EINVAL (constraint: the data is wrong),
 * else EIO.  Every db_ error carries it in struct err.code. */
int db_errno(sqlite3 *db);

int db_exec(sqlite3 *db, const char *sql, struct err *e);
int db_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql,
    struct err *e);

/* Step a statement that returns no rows, then reset it. */
int db_step_done(sqlite3 *db, sqlite3_stmt *st, struct err *e);

/*
 * SQLite online backup of src's main database to path: written beside it
 * (path.tmp), fsynced, renamed into place, directory fsynced, so path is
 * either the old file or a whole new copy.
 */
int db_backup(sqlite3 *src, const char *path, struct err *e);

/* Bind text, or NULL when s is NULL or empty. */
int db_bind_text(sqlite3_stmt *st, int i, const char *s);

/*
 * config: where things are and what the gateway is called, from the
 * environment, with the seed's names.
 *
 * Every path left unset lives under GATEWAY_DATA_DIR (default ./var):
 *
 *   PACS_STORAGE_PATH      $GATEWAY_DATA_DIR/store
 *   PACS_DB_PATH           $GATEWAY_DATA_DIR/pacs.db
 *   WORKLIST_DB_PATH       $GATEWAY_DATA_DIR/worklist.db
 *   GATEWAY_SPOOL_DIR      $GATEWAY_DATA_DIR/spool
 *   GATEWAY_INCOMING_DIR   $GATEWAY_DATA_DIR/incoming
 *   GATEWAY_QUARANTINE_DIR $GATEWAY_DATA_DIR/quarantine
 *   GATEWAY_BACKUP_DIR     $GATEWAY_DATA_DIR/backup
 *   GATEWAY_THUMBS_DIR     $GATEWAY_DATA_DIR/thumbs
 *
 * and PACS_AET (SCREENING_PACS), PACS_PORT (4244), WORKLIST_AET
 * (SCREENING_MWL), WORKLIST_PORT (4243), QR_AET (SCREENING_QR), QR_PORT
 * (4246).  Programs override single fields from their options after
 * loading.
 *
 * gateway.env: config_load() first reads the configuration file gatewayd
 * reads: $GATEWAY_ENV_FILE, else /etc/screening-gateway/gateway.env, else
 * ./gateway.env (a missing default file is fine; a named file that cannot
 * be read is an error).  Each KEY=VALUE of the file whose KEY is not in
 * the environment is put there with setenv(), so that every getenv() of
 * the program sees it too: the environment wins, the LAST line of a key
 * wins over earlier ones (as sh, systemd and dotenv read such a file),
 * and values are taken literally, never evaluated (config_env_parse).
 * Then the production gateway's names (the alias column of the settings
 * table: MWL_AET, MWL_PORT, ...) fill our names that are still unset,
 * and the values of case-blind settings (LOG_LEVEL, ENVIRONMENT) are
 * lower-cased.  config_load() creates nothing.
 */

struct config {
	char data_dir[PATH_MAX];
	char storage_path[PATH_MAX];
	char pacs_db_path[PATH_MAX];
	char worklist_db_path[PATH_MAX];
	char spool_dir[PATH_MAX];
	char incoming_dir[PATH_MAX];
	char quarantine_dir[PATH_MAX];
	char backup_dir[PATH_MAX];
	char thumbs_dir[PATH_MAX];
	char pacs_aet[17];
	int pacs_port;
	char worklist_aet[17];
	int worklist_port;
	char qr_aet[17];
	int qr_port;
};

/* Fill c from the environment.  -1 with e set on a bad value (a port
 * that is not a number, an AE title longer than 16 characters, ...). */
int config_load(struct config *c, struct err *e);

/*
 * The configuration file: the path config_load() reads, in out; 0, or 1
 * when there is none (no GATEWAY_ENV_FILE and no default file).
 */
int config_env_file(char *out, size_t outsz);

/*
 * gateway.env, parsed exactly as gatewayd(8) parses it, from a buffer
 * (it need not end in NUL or a newline; NUL bytes make a line bad).  Per
 * line: a trailing CR is dropped; leading blanks and tabs and then one
 * "export " are skipped; empty lines and lines starting with # are
 * comments; the name is everything before the first '=' and must match
 * [A-Z_][A-Z0-9_]*; the value is everything after it, without one pair
 * of enclosing double or single quotes.  Nothing is expanded.
 *
 * on_value(key, value, arg) for each setting (both NUL-terminated,
 * valid during the call only); on_bad(line_number, why, arg) for each
 * bad line ("without =", "bad name"), when not NULL.  A non-zero return
 * of a callback stops the parse and is returned; else 0.
 */
int config_env_parse(const char *text, size_t len,
    int (*on_value)(const char *key, const char *value, int line, void *arg),
    void (*on_bad)(int line, const char *why, void *arg), void *arg);

/*
 * The configuration file as a whole, for those who show or check it
 * (gatewayctl config): each key once, with its last value and the line
 * it is on (first_line: an earlier line of the same key, 0 if none), and
 * the bad lines.  config_file_read(): 0, 1 when there is no file (f is
 * then empty), -1 with e set; free with config_file_free().
 */
struct config_entry {
	char *key, *value;
	int line, first_line;
};

struct config_file {
	char path[PATH_MAX];
	struct config_entry *v;
	size_t n;
	struct { int line; const char *why; } bad[16];
	size_t nbad;		/* may exceed the 16 kept */
};

int config_file_read(struct config_file *f, struct err *e);
void config_file_free(struct config_file *f);
const struct config_entry *config_file_get(const struct config_file *f,
    const char *key);

/*
 * Where a setting's value comes from, in this order: its name in the
 * environment, its name in the file (f; NULL: the file is already in the
 * environment), production's name for it (as) in the environment, then in
 * the file, else its default (value NULL when it has none; a path under
 * GATEWAY_DATA_DIR as that resolves).  An empty value counts as unset.
 * value points into the environment, f or out.
 */
enum config_from { CONFIG_FROM_DEFAULT, CONFIG_FROM_ENV, CONFIG_FROM_FILE };

struct config_value {
	const char *value;
	enum config_from from;
	int line;		/* CONFIG_FROM_FILE */
	const char *as;		/* production's name, when that set it */
	char dflt[PATH_MAX];
};

struct setting;
int config_resolve(const struct config_file *f, const struct setting *s,
    struct config_value *out);

/*
 * Read the file config_env_file() names and setenv() each of its values
 * not already set (the last line of a key wins), then production's names
 * for ours not set (see config_resolve).  0 when done or there is no
 * file; -1 with e set when a named file cannot be read.
 */
int config_env_load(struct err *e);

/* A whole decimal number in [lo, hi] (option values): 0, or -1. */
int config_parse_int(const char *s, int lo, int hi, int *out);

/* A setting from the environment: NULL when it is unset or empty. */
const char *config_env(const char *name);

/*
 * A setting as a program reads it, through the settings table: its value
 * from the environment (config_load put gateway.env there), else the
 * table's default (NULL when it has none).
 */
const char *config_value(const char *name);

/*
 * A number setting (INT, PORT, BOOL; DURATION in seconds; SIZE in
 * bytes), checked against its row's range: 0, or -1 with e naming the
 * setting, the value and what it takes.  A name with no row is an error.
 */
int config_long(const char *name, long *out, struct err *e);

/* A CHOICE setting: the index of its value among the row's choices
 * ("a|b|c": a is 0), any case, in *index unless NULL (a check only); -1
 * with e as above. */
int config_choice(const char *name, int *index, struct err *e);

/*
 * What of the cloud is configured.  Images go to the Manage API when
 * CLOUD_API_ENDPOINT is set; events (study.image_received,
 * mpps.status_update, gateway.alert) go over the relay when
 * AZURE_RELAY_NAMESPACE and AZURE_RELAY_EVENTS_HYBRID_CONNECTION are.
 * gatewayd runs relaysend when either is true (its wants_relaysend).
 * A producer queues a job for the cloud only when the part that would
 * send it is configured: with the cloud off, nothing accumulates that
 * nothing will ever send (images stay HELD in pacs.db, MPPS events stay
 * in worklist.db's outbox).  Read after config_load(), so gateway.env
 * counts.
 */
int config_cloud_images(void);
int config_cloud_events(void);
/* The cloud's actions come in through relaylisten: AZURE_RELAY_NAMESPACE
 * and AZURE_RELAY_HYBRID_CONNECTION (gatewayd's wants_relaylisten). */
int config_cloud_actions(void);
/* The path of one stage's spool: <spool_dir>/<stage>. */
int config_spool_path(const struct config *c, const char *stage,
    char *out, size_t outsz, struct err *e);

/*
 * settings: the one table of every setting the gateway reads: its name,
 * default, kind and range (or allowed values), whether it is a secret,
 * production's name for it (the NHS gateway's .env, where it differs) and
 * one line of doc.  gatewayctl config shows, checks and exports it for
 * gatewayd; gateway.env(5) documents every row (t/0230 checks both ways,
 * and that every name the code reads has a row).
 *
 * Kinds: TEXT anything on one line; PATH and FILE a path; AET an AE
 * title (1-16 characters, no backslash); AETS a comma-separated list of
 * them; HOSTS addresses or CIDR networks (checked by lib/dicomnet's
 * netallow, above this layer); PORT 1-65535; INT a whole number in
 * [lo, hi]; DURATION seconds, or a number with s, m, h or d, in [lo, hi];
 * SIZE bytes, or a number with K, M, G or T (powers of 1024); BOOL 0 or
 * 1; CHOICE one of choices ("a|b"); URL http:// or https://; ZONE UTC
 * or a zone of the tz database (a TZif file below $TZDIR).  An empty
 * value is the same as unset.  IGNORED rows are production's names with
 * no use here: accepted, shown, never an error.
 *
 * Nothing here prints; only settings_zone_exists() reads the environment
 * (TZDIR).
 */
enum setting_kind {
	SETTING_TEXT, SETTING_PATH, SETTING_FILE, SETTING_AET, SETTING_AETS,
	SETTING_HOSTS, SETTING_PORT, SETTING_INT, SETTING_DURATION,
	SETTING_SIZE, SETTING_BOOL, SETTING_CHOICE, SETTING_URL, SETTING_ZONE
};

#define SETTING_SECRET	0x01	/* never shown */
#define SETTING_NOCASE	0x02	/* a choice in any case; lower-cased */
#define SETTING_IGNORED	0x04	/* production's, unused here */

struct setting {
	const char *name;
	const char *dflt;	/* NULL: none; "$GATEWAY_DATA_DIR/..." */
	enum setting_kind kind;
	long lo, hi;		/* INT, DURATION */
	const char *choices;	/* CHOICE: "a|b|c" */
	unsigned flags;
	const char *alias;	/* production's name, NULL: the same */
	const char *doc;	/* one line */
};

size_t settings_count(void);
const struct setting *settings_at(size_t i);	/* NULL past the end */
const struct setting *settings_find(const char *name);
/* The setting production's name stands for, or NULL. */
const struct setting *settings_find_alias(const char *alias);
/* The setting whose name is at most 3 edits from name (a typo), or NULL. */
const struct setting *settings_nearest(const char *name);

/* value is acceptable for s (empty is): 0, or -1 with e naming s, the
 * value and what is allowed. */
int settings_check_value(const struct setting *s, const char *value,
    struct err *e);

/* s's default with $GATEWAY_DATA_DIR as data_dir ("" when none): 0, or
 * -1 when it does not fit. */
int settings_default(const struct setting *s, const char *data_dir,
    char *out, size_t outsz);

/* 0 when name is a zone of the tz database (a TZif file below $TZDIR,
 * default /usr/share/zoneinfo), else -1. */
int settings_zone_exists(const char *name);

/* The units of SIZE and DURATION values: 0, or -1 when v is not one. */
int settings_parse_size(const char *v, long long *bytes);
int settings_parse_duration(const char *v, long long *seconds);

#endif
