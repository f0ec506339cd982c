/*
 * config_test: gateway.env parsed as gatewayd parses it (t/9001 checks
 * gatewayd's side with the same cases), and config_load() filling the
 * environment from the file without overriding it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "tap.h"

struct seen {
	char text[2048];
	char bad[256];
};

static int
on_value(const char *key, const char *value, int line, void *arg)
{
	(void)line;
	struct seen *s = arg;
	size_t n = strlen(s->text);

	snprintf(s->text + n, sizeof s->text - n, "%s=[%s]\n", key, value);
	return 0;
}

static void
on_bad(int line, const char *why, void *arg)
{
	struct seen *s = arg;
	size_t n = strlen(s->bad);

	snprintf(s->bad + n, sizeof s->bad - n, "%d %s\n", line, why);
}

static void
parse(struct seen *s, const char *text, size_t len)
{
	memset(s, 0, sizeof *s);
	config_env_parse(text, len, on_value, on_bad, s);
}

int
main(int argc, char **argv)
{
	static const char file[] =
	    "# a comment, then a blank line\n"
	    "\n"
	    "PACS_AET=\"SITE PACS\"\n"
	    "  PACS_PORT=11112\n"
	    "export WORKLIST_AET='MWL\"1'\n"
	    "WORKLIST_PORT=$(touch pwned)\n"
	    "\tLOG_LEVEL=DEBUG\r\n"
	    "lower_case=ignored\n"
	    "no equals sign\n"
	    "EMPTY=\n"
	    "Q=\"\n"
	    "HALF=\"open'\n"
	    "EQ=a=b\n"
	    "LAST=no newline";
	char path[4096], buf[64];
	struct config c;
	struct err e = { 0 };
	struct seen s;
	FILE *f;

	tap_plan(12);
	parse(&s, file, sizeof file - 1);
	is_str(s.text,
	    "PACS_AET=[SITE PACS]\n"
	    "PACS_PORT=[11112]\n"
	    "WORKLIST_AET=[MWL\"1]\n"
	    "WORKLIST_PORT=[$(touch pwned)]\n"
	    "LOG_LEVEL=[DEBUG]\n"
	    "EMPTY=[]\n"
	    "Q=[\"]\n"
	    "HALF=[\"open']\n"
	    "EQ=[a=b]\n"
	    "LAST=[no newline]\n",
	    "values are literal: quotes, export, blanks, CRLF, no expansion");
	is_str(s.bad, "8 with a bad name\n9 without =\n",
	    "bad lines are reported by number");
	parse(&s, "A=1\0B=2\nC=3\n", 12);
	is_str(s.text, "C=[3]\n", "a line with a NUL byte is not taken");
	is_str(s.bad, "1 with a NUL byte\n", "... and is reported");
	parse(&s, "", 0);
	is_str(s.text, "", "an empty file sets nothing");

	if (argc < 2)
		return 1;
	snprintf(path, sizeof path, "%s/gateway.env", argv[1]);
	if ((f = fopen(path, "w")) == NULL)
		return 1;
	fputs("PACS_AET=FROM_FILE\nPACS_PORT=5000\nPACS_PORT=6000\n"
	    "WORKLIST_AET=FILE_MWL\nGATEWAY_DATA_DIR=/srv/gw\n", f);
	fclose(f);
	setenv("GATEWAY_ENV_FILE", path, 1);
	setenv("WORKLIST_AET", "ENV_MWL", 1);
	unsetenv("PACS_AET");
	unsetenv("PACS_PORT");
	unsetenv("GATEWAY_DATA_DIR");
	unsetenv("PACS_DB_PATH");
	ok(config_load(&c, &e) == 0, "config_load reads GATEWAY_ENV_FILE");
	is_str(c.pacs_aet, "FROM_FILE", "a file value is used");
	is_str(c.worklist_aet, "ENV_MWL", "the environment wins over the file");
	snprintf(buf, sizeof buf, "%d", c.pacs_port);
	is_str(buf, "6000", "the last line of a key wins, as sh, systemd and dotenv read it");
	is_str(c.pacs_db_path, "/srv/gw/pacs.db",
	    "paths follow the file's GATEWAY_DATA_DIR");
	is_str(getenv("PACS_AET"), "FROM_FILE",
	    "file values reach getenv() too");
	snprintf(path, sizeof path, "%s/missing.env", argv[1]);
	setenv("GATEWAY_ENV_FILE", path, 1);
	ok(config_load(&c, &e) == -1 && strstr(e.msg, "missing.env") != NULL,
	    "a named file that is missing is an error: %s", e.msg);
	return tap_done();
}
