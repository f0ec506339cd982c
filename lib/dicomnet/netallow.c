/* netallow: addresses and CIDR networks allowed to connect (dicomnet/dicomnet.h). */
#include "dicomnet/dicomnet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static int
parse_net(struct netallow *a, char *tok)
{
	char *slash = strchr(tok, '/');
	int max, i = a->n;

	if (slash != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, tok, a->net[i].addr) == 1)
		a->net[i].family = AF_INET, max = 32;
	else if (inet_pton(AF_INET6, tok, a->net[i].addr) == 1)
		a->net[i].family = AF_INET6, max = 128;
	else
		return -1;
	a->net[i].prefix = max;
	if (slash != NULL &&
	    config_parse_int(slash, 0, max, &a->net[i].prefix) == -1)
		return -1;
	a->n++;
	return 0;
}

int
netallow_parse(struct netallow *a, const char *list)
{
	char buf[4096], *tok, *save = NULL;

	a->n = 0;
	if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf)
		return -1;
	for (tok = strtok_r(buf, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save))
		if (a->n >= NETALLOW_MAX || parse_net(a, tok) == -1)
			return -1;
	return 0;
}

static int
in_net(const unsigned char *net, int prefix, const unsigned char *addr)
{
	int full = prefix / 8, rest = prefix % 8;

	if (memcmp(net, addr, (size_t)full) != 0)
		return 0;
	return rest == 0 ||
	    ((net[full] ^ addr[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* family and bytes of an address, IPv4-mapped IPv6 taken as IPv4. */
static int
match(const struct netallow *a, int family, const unsigned char *addr)
{
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0, 0xff, 0xff };
	int i;

	if (a->n == 0)
		return 1;
	if (family == AF_INET6 && memcmp(addr, v4mapped, 12) == 0)
		family = AF_INET, addr += 12;
	for (i = 0; i < a->n; i++)
		if (a->net[i].family == family &&
		    in_net(a->net[i].addr, a->net[i].prefix, addr))
			return 1;
	return 0;
}

int
netallow_sockaddr(const struct netallow *a, const struct sockaddr *sa)
{
	if (a->n == 0)
		return 1;
	if (sa->sa_family == AF_INET)
		return match(a, AF_INET, (const unsigned char *)
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6)
		return match(a, AF_INET6, ((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr.s6_addr);
	return 0;
}

int
netallow_text(const struct netallow *a, const char *addr)
{
	unsigned char b[16];

	if (a->n == 0)
		return 1;
	if (inet_pton(AF_INET, addr, b) == 1)
		return match(a, AF_INET, b);
	if (inet_pton(AF_INET6, addr, b) == 1)
		return match(a, AF_INET6, b);
	return 0;
}
