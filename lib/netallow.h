/*
 * netallow: who may connect, by address: a list of addresses and CIDR
 * networks ("10.20.0.0/16, 192.168.1.7, fd00::/8"), IPv4 and IPv6; an
 * IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches the IPv4 entries.  An
 * empty list allows everyone.  No allocation, no dependencies: the
 * per-image storescp-hook uses it as well as the servers.
 */
#ifndef GW_NETALLOW_H
#define GW_NETALLOW_H

#include <sys/socket.h>

#define NETALLOW_MAX	64

struct netallow {
	struct {
		int family;		/* AF_INET or AF_INET6 */
		unsigned char addr[16];
		int prefix;		/* bits */
	} net[NETALLOW_MAX];
	int n;			/* 0: anyone */
};

/* Parse a comma- or space-separated list: 0, or -1 on a bad entry. */
int netallow_parse(struct netallow *a, const char *list);

/* 1 when the address is allowed (always with an empty list), else 0. */
int netallow_sockaddr(const struct netallow *a, const struct sockaddr *sa);
int netallow_text(const struct netallow *a, const char *addr);

#endif
