/* senders: who may store images (see dicomnet/dicomnet.h). */
#include "dicomnet/dicomnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int
senders_parse_aets(char aets[][UL_AE_MAX], int max, const char *list)
{
	char buf[4096], *tok, *save = NULL;
	size_t len;
	int n = 0;

	if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf)
		return -1;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		tok += strspn(tok, " \t");
		for (len = strlen(tok); len > 0 && (tok[len - 1] == ' ' ||
		    tok[len - 1] == '\t'); len--)
			tok[len - 1] = '\0';
		if (len == 0)
			continue;
		if (n >= max || len > UL_AE_MAX - 1)
			return -1;
		memcpy(aets[n], tok, len + 1);
		n++;
	}
	return n;
}

int
senders_from_env(struct senders *s, struct err *e)
{
	const char *v = getenv("PACS_ALLOWED_AETS");

	memset(s, 0, sizeof *s);
	if (v != NULL && (s->naets = senders_parse_aets(s->aets,
	    SENDERS_MAX_AETS, v)) == -1)
		return err_set(e, EINVAL, "bad PACS_ALLOWED_AETS: comma-separated "
		    "AE titles of at most 16 characters, at most %d",
		    SENDERS_MAX_AETS);
	if ((v = getenv("PACS_ALLOWED_HOSTS")) != NULL && *v != '\0' &&
	    netallow_parse(&s->hosts, v) == -1)
		return err_set(e, EINVAL, "bad PACS_ALLOWED_HOSTS: comma-separated "
		    "addresses or networks (10.0.0.0/8, fd00::/8), at most %d",
		    NETALLOW_MAX);
	return 0;
}

int
senders_aet_allowed(const struct senders *s, const char *calling_aet)
{
	int i;

	if (s->naets == 0)
		return 1;
	for (i = 0; i < s->naets; i++)
		if (strcmp(s->aets[i], calling_aet) == 0)
			return 1;
	return 0;
}

const char *
senders_refusal(const struct senders *s, const char *calling_aet,
    const char *address, char *why, size_t whysz)
{
	if (calling_aet[0] == '\0' && address[0] == '\0')
		return NULL;	/* the sweep: the sender is not known */
	if (!senders_aet_allowed(s, calling_aet)) {
		snprintf(why, whysz, "calling AE title \"%s\" is not in "
		    "PACS_ALLOWED_AETS", calling_aet);
		return why;
	}
	if (!netallow_text(&s->hosts, address)) {
		snprintf(why, whysz, "peer address %s is not in "
		    "PACS_ALLOWED_HOSTS", address);
		return why;
	}
	return NULL;
}
