/* ec_svc: service prefixes and bounded scope-name tables for the accounting writers.
 * Linear longest-prefix match (at most 64 prefixes, a few hundred ns at worst) and an
 * open-addressing name table that never grows: both live inside the caller's struct. */
#include <stdio.h>
#include <string.h>

#include "ec_err.h"
#include "ec_svc.h"

void ec_svc_map_init(struct ec_svc_map *m)
{
	memset(m, 0, sizeof *m);
	snprintf(m->svc[0].name, sizeof m->svc[0].name, "%s", EC_SVC_DEFAULT);
	m->n = 1;
}

static int prefix_ok(const char *p, size_t len)
{
	if (len == 0 || len > EC_SVC_PREFIX_MAX || p[0] != '/')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= ' ' || c == 0x7f || c == '?' || c == '#')
			return 0;
	}
	return 1;
}

int ec_svc_map_add(struct ec_svc_map *m, const char *item, char *why, size_t whylen)
{
	const char *eq = strchr(item, '=');
	char name[EC_ACCT_SCOPE_NAME_MAX + 1];
	size_t name_len, prefix_len;
	struct ec_svc *s;

	if (!eq) {
		snprintf(why, whylen, "expected NAME=/prefix/, e.g. vod=/v/");
		return EC_EINVAL;
	}
	name_len = (size_t)(eq - item);
	prefix_len = strlen(eq + 1);
	if (name_len == 0 || name_len >= sizeof name) {
		snprintf(why, whylen, "expected a service name of 1-32 characters of "
		         "[A-Za-z0-9_-] before '='");
		return EC_EINVAL;
	}
	memcpy(name, item, name_len);
	name[name_len] = '\0';
	if (!ec_acct_name_ok(name)) {
		snprintf(why, whylen, "expected a service name of 1-32 characters of "
		         "[A-Za-z0-9_-] before '='");
		return EC_EINVAL;
	}
	if (!prefix_ok(eq + 1, prefix_len)) {
		snprintf(why, whylen, "expected a path prefix after '=' starting with '/' (at "
		         "most %d bytes, no spaces, '?' or '#')", EC_SVC_PREFIX_MAX);
		return EC_EINVAL;
	}
	for (size_t i = 1; i < m->n; i++) {
		if (m->svc[i].prefix_len == prefix_len &&
		    memcmp(m->svc[i].prefix, eq + 1, prefix_len) == 0) {
			snprintf(why, whylen, "expected each prefix once, but %s is already "
			         "service %s", m->svc[i].prefix, m->svc[i].name);
			return EC_EINVAL;
		}
	}
	if (m->n > EC_SVC_MAX) {
		snprintf(why, whylen, "expected at most %d services", EC_SVC_MAX);
		return EC_ERANGE;
	}
	s = &m->svc[m->n++];
	memcpy(s->name, name, name_len + 1);
	memcpy(s->prefix, eq + 1, prefix_len + 1);
	s->prefix_len = prefix_len;
	return 0;
}

size_t ec_svc_map_match(const struct ec_svc_map *m, const char *path, size_t len)
{
	size_t best = 0, best_len = 0;

	for (size_t i = 1; i < m->n; i++) {
		const struct ec_svc *s = &m->svc[i];

		if (s->prefix_len > best_len && s->prefix_len <= len &&
		    memcmp(s->prefix, path, s->prefix_len) == 0) {
			best = i;
			best_len = s->prefix_len;
		}
	}
	return best;
}

const char *ec_svc_scope_name(const char *name)
{
	return ec_acct_name_ok(name) ? name : EC_SVC_OTHER;
}

static uint64_t tab_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void ec_svc_tab_init(struct ec_svc_tab *t, size_t cap)
{
	memset(t, 0, sizeof *t);
	t->cap = cap < 2 || cap > EC_SVC_TAB_MAX ? EC_SVC_TAB_MAX : cap;
	snprintf(t->names[0], sizeof t->names[0], "%s", EC_SVC_OTHER);
	t->slots[tab_hash(EC_SVC_OTHER, strlen(EC_SVC_OTHER)) & (EC_SVC_TAB_SLOTS - 1)] = 1;
	t->n = 1;
}

size_t ec_svc_tab_slot(struct ec_svc_tab *t, const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > EC_ACCT_SCOPE_NAME_MAX)
		return 0;
	/* most calls repeat the last name (a service's, a region's) */
	if (t->last && memcmp(t->names[t->last], name, len) == 0 && t->names[t->last][len] == '\0')
		return t->last;
	for (size_t k = 0; k < len; k++) {
		char c = name[k];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	for (i = tab_hash(name, len) & (EC_SVC_TAB_SLOTS - 1); t->slots[i];
	     i = (i + 1) & (EC_SVC_TAB_SLOTS - 1)) {
		const char *n = t->names[t->slots[i] - 1];

		if (strncmp(n, name, len) == 0 && n[len] == '\0') {
			t->last = t->slots[i] - 1u;
			return t->last;
		}
	}
	if (t->n >= t->cap) {
		t->overflow++;
		return 0;
	}
	memcpy(t->names[t->n], name, len);
	t->names[t->n][len] = '\0';
	t->slots[i] = (uint16_t)(t->n + 1);
	return t->n++;
}
