/* ctl_publish: `echosctl publish URL` announces new content to the origin-shim that
 * serves URL: POST <scheme://host:port>/_echos/publish with a bearer token and the JSON
 * body of docs/ops.md, so the control plane can place it before viewers ask. Does not
 * retry: the operator sees the answer and decides. Owns one libcurl handle per call. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ec_acct.h"
#include "ec_state.h"

#define PUBLISH_PATH "/_echos/publish"
#define PUBLISH_REPLY_MAX 4096
#define PUBLISH_TOKEN_MAX 4096

struct reply_buf {
	char data[PUBLISH_REPLY_MAX + 1];
	size_t len;
};

/* Keeps the first PUBLISH_REPLY_MAX bytes of the answer for the message. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct reply_buf *b = arg;
	size_t n = size * nmemb, room = PUBLISH_REPLY_MAX - b->len;

	memcpy(b->data + b->len, ptr, n < room ? n : room);
	b->len += n < room ? n : room;
	b->data[b->len] = '\0';
	return n;
}

/* Reads the token: the first line of the file, or $ECHOS_PUBLISH_TOKEN. Returns 0, or
 * an exit status after printing why. */
static int read_token(const struct ctl_opts *o, char *tok, size_t len)
{
	const char *env = getenv("ECHOS_PUBLISH_TOKEN");
	FILE *f;

	if (o->token_file) {
		f = fopen(o->token_file, "r");
		if (!f) {
			fprintf(stderr, CTL_PROG ": publish: cannot read the token file %s: %s\n",
			        o->token_file, strerror(errno));
			return 1;
		}
		if (!fgets(tok, (int)len, f))
			tok[0] = '\0';
		fclose(f);
	} else if (env) {
		snprintf(tok, len, "%s", env);
	} else {
		return ctl_fail_usage("publish needs a token: --token-file FILE or "
		                      "$ECHOS_PUBLISH_TOKEN");
	}
	tok[strcspn(tok, "\r\n")] = '\0';
	if (!tok[0] || strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                           "0123456789-._~+/=") != strlen(tok)) {
		fprintf(stderr, CTL_PROG ": publish: the token is empty or has characters a "
		        "bearer token cannot hold (RFC 6750)\n");
		return 1;
	}
	return 0;
}

/* Splits URL into the publish endpoint and the object's path (with its query).
 * Returns 0 or an exit status after printing why. */
static int split_url(const char *url, char **endpoint, char **path)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *p = NULL, *q = NULL;
	int rc = 2;

	*endpoint = *path = NULL;
	if (!u)
		return 1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &p, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		ctl_fail_usage("publish URL: expected http(s)://SHIM[:PORT]/path/of/object");
		goto out;
	}
	if (strcmp(p, "/") == 0) {
		ctl_fail_usage("publish URL: the URL names no object (its path is /)");
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_QUERY, &q, 0);
	if (asprintf(endpoint, "%s://%s%s%s" PUBLISH_PATH, scheme, host, port ? ":" : "",
	             port ? port : "") < 0 ||
	    asprintf(path, "%s%s%s", p, q ? "?" : "", q ? q : "") < 0) {
		*endpoint = *path = NULL;
		rc = 1;
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(p);
	curl_free(q);
	curl_url_cleanup(u);
	return rc;
}

/* The request body: {"path":..., "expected_rps":..., "regions":[...]} (docs/ops.md). */
static char *publish_body(const struct ctl_opts *o, const char *path)
{
	char *body = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&body, &len);

	if (!f)
		return NULL;
	fputs("{\"path\":", f);
	ec_json_str(f, path);
	if (o->expected_rps >= 0) {
		fputs(",\"expected_rps\":", f);
		ec_json_num(f, o->expected_rps);
	}
	fputs(",\"regions\":[", f);
	for (size_t i = 0; i < o->n_regions; i++) {
		if (i)
			putc(',', f);
		ec_json_str(f, o->regions[i]);
	}
	fputs("]}", f);
	if (fclose(f) != 0) {
		free(body);
		return NULL;
	}
	return body;
}

int ctl_cmd_publish(const struct ctl_opts *o, const char *url)
{
	char tok[PUBLISH_TOKEN_MAX], auth[PUBLISH_TOKEN_MAX + 32], cerr[CURL_ERROR_SIZE];
	char *endpoint = NULL, *path = NULL, *body = NULL;
	struct curl_slist *hdrs = NULL;
	struct reply_buf reply;
	long status = 0;
	CURL *c = NULL;
	CURLcode cc;
	int rc;

	if (!url)
		return ctl_fail_usage("publish needs the object's URL on the origin-shim");
	for (size_t i = 0; i < o->n_regions; i++)
		if (!ec_acct_name_ok(o->regions[i]))
			return ctl_fail_usage("--region: expected [A-Za-z0-9_-], 1 to 32 characters");
	if ((rc = split_url(url, &endpoint, &path)) != 0)
		return rc;
	if ((rc = read_token(o, tok, sizeof tok)) != 0)
		goto out;
	rc = 1;
	body = publish_body(o, path);
	c = curl_easy_init();
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = hdrs ? curl_slist_append(hdrs, auth) : NULL;
	if (!body || !c || !hdrs) {
		fprintf(stderr, CTL_PROG ": publish: out of memory\n");
		goto out;
	}
	memset(&reply, 0, sizeof reply);
	cerr[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, endpoint);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms * 5);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		fprintf(stderr, CTL_PROG ": publish: POST %s: %s\n", endpoint,
		        cerr[0] ? cerr : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	reply.data[strcspn(reply.data, "\r\n")] = '\0';
	if (status >= 200 && status < 300) {
		if (o->json)
			printf("%s\n", reply.len ? reply.data : "{}");
		else
			printf("published %s (%ld from %s)\n", path, status, endpoint);
		rc = 0;
	} else if (status == 404 || status == 405 || status == 501) {
		fprintf(stderr, CTL_PROG ": publish: %s answered %ld: this origin-shim has no "
		        "publish API (POST " PUBLISH_PATH "); upgrade it or check the URL\n",
		        endpoint, status);
	} else if (status == 401 || status == 403) {
		fprintf(stderr, CTL_PROG ": publish: %s answered %ld: the token was refused%s%s\n",
		        endpoint, status, reply.len ? ": " : "", reply.data);
	} else {
		fprintf(stderr, CTL_PROG ": publish: %s answered %ld%s%s\n", endpoint, status,
		        reply.len ? ": " : "", reply.data);
	}
out:
	explicit_bzero(tok, sizeof tok);
	explicit_bzero(auth, sizeof auth);
	curl_slist_free_all(hdrs);
	if (c)
		curl_easy_cleanup(c);
	free(body);
	free(endpoint);
	free(path);
	return rc;
}
