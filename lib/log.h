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
#ifndef GW_LOG_H
#define GW_LOG_H

#include "err.h"

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

#endif
