/* A relayed WebSocket's tags and attachment as a reserved key of its object (see
 * cluster_wsstate.h). The record: u8 tag count, each tag as u16 length (little-endian) and
 * bytes, then the attachment's bytes. It is written in the event that sets the attachment,
 * read when the same relay (by its state ID) reopens on the slot's next owner, and deleted
 * when the socket closes while its object is served here. */
#include "cluster_wsstate.h"
#include "cluster_forward.h"
#include "cluster_relay_wire.h"
#include "core.h"
#include "http_parse.h"
#include "kv.h"
#include "log.h"
#include "obj_ws_int.h"
#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAX (1 + DURO_WS_MAX_TAGS * (2 + DURO_WS_MAX_TAG) + DURO_WS_MAX_ATTACHMENT)

static size_t state_key(char *out, uint64_t id)
{
	memcpy(out, OBJ_CLUSTER_WSSTATE_PREFIX, OBJ_CLUSTER_WSSTATE_PREFIX_LEN);
	for (int i = 0; i < 8; i++)
		out[OBJ_CLUSTER_WSSTATE_PREFIX_LEN + i] = (char)(id >> (56 - 8 * i));
	return OBJ_CLUSTER_WSSTATE_PREFIX_LEN + 8;
}

/* 16 lowercase or uppercase hex digits, not all zero. */
static uint64_t parse_id(const char *v, size_t n)
{
	if (n != 16)
		return 0;
	uint64_t id = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0')
			     : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
			     : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10) : 16u;
		if (d == 16)
			return 0;
		id = id << 4 | d;
	}
	return id;
}

static int is_reopen(const struct http_request *req)
{
	size_t n;
	const char *v = http_find_header(req, OBJ_CLUSTER_WSR_HEADER, &n);
	return v && n > 7 && !memcmp(v + n - 7, " reopen", 7);
}

void obj_cluster_ws_accepted(struct core *c, struct object *obj, struct http_exchange *ex,
			     struct ws_member *m)
{
	size_t n, mn;
	if (!c->obj->cluster || m->kind != WS_KIND_SOCKET ||
	    !http_find_header(&ex->req, OBJ_CLUSTER_FWD_HEADER, &mn))
		return;
	const char *v = http_find_header(&ex->req, OBJ_CLUSTER_WSSTATE_HEADER, &n);
	uint64_t id = v ? parse_id(v, n) : 0;
	if (!id)
		return;
	m->state_id = id;
	if (!is_reopen(&ex->req))
		return;
	char key[OBJ_CLUSTER_WSSTATE_PREFIX_LEN + 8];
	struct duro_str val;
	int r = kv_read(obj, key, state_key(key, id), &val);
	if (r < 0)
		log_warn("class %s: a relayed WebSocket's tags and attachment could not be read "
			 "(%d): it has those its class gave it again", obj->cls->name, r);
	if (r != 1 || val.len == 0 || val.len > STATE_MAX || !(m->state_pending = malloc(val.len)))
		return;
	memcpy(m->state_pending, val.ptr, val.len);
	m->state_pending_len = (uint32_t)val.len;
}

/* Parses a record into fresh tag bytes (the member's layout) and attachment. */
static int decode(const char *p, size_t len, char **tags, uint8_t *ntags, char **att,
		  uint16_t *alen)
{
	if (len < 1 || (uint8_t)p[0] > DURO_WS_MAX_TAGS)
		return -EINVAL;
	unsigned nt = (uint8_t)p[0];
	size_t i = 1, tbytes = 0;
	for (unsigned k = 0; k < nt; k++) {
		if (i + 2 > len)
			return -EINVAL;
		size_t tl = (uint8_t)p[i] | (size_t)(uint8_t)p[i + 1] << 8;
		if (tl == 0 || tl > DURO_WS_MAX_TAG || i + 2 + tl > len)
			return -EINVAL;
		i += 2 + tl;
		tbytes += 2 + tl;
	}
	size_t al = len - i;
	if (al > DURO_WS_MAX_ATTACHMENT)
		return -EINVAL;
	char *tb = tbytes ? malloc(tbytes) : NULL, *ab = al ? malloc(al) : NULL;
	if ((tbytes && !tb) || (al && !ab)) {
		free(tb);
		free(ab);
		return -ENOMEM;
	}
	char *w = tb;
	i = 1;
	for (unsigned k = 0; k < nt; k++) {
		uint16_t tl = (uint16_t)((uint8_t)p[i] | (uint8_t)p[i + 1] << 8);
		memcpy(w, &tl, 2);
		memcpy(w + 2, p + i + 2, tl);
		w += 2 + tl;
		i += 2 + (size_t)tl;
	}
	if (al)
		memcpy(ab, p + i, al);
	*tags = tb;
	*ntags = (uint8_t)nt;
	*att = ab;
	*alen = (uint16_t)al;
	return 0;
}

void obj_cluster_ws_restore(struct object *obj, struct ws_member *m)
{
	if (!m || !m->state_pending)
		return;
	char *tags, *att;
	uint8_t ntags;
	uint16_t alen;
	int r = decode(m->state_pending, m->state_pending_len, &tags, &ntags, &att, &alen);
	obj_cluster_ws_member_free(m);
	if (r < 0) {
		log_warn("class %s: a relayed WebSocket's stored tags and attachment are %s: it has "
			 "those its class gave it again", obj->cls->name,
			 r == -ENOMEM ? "too large for memory now" : "malformed");
		return;
	}
	free(m->tags);
	free(m->attach);
	m->tags = tags;
	m->ntags = ntags;
	m->attach = att;
	m->attach_len = alen;
	if (obj_cluster_ws_save(obj, m) < 0)
		log_warn("class %s: a relayed WebSocket's tags and attachment could not be written "
			 "again", obj->cls->name);
}

int obj_cluster_ws_save(struct object *obj, struct ws_member *m)
{
	size_t tbytes = 0;
	for (unsigned k = 0; k < m->ntags; k++) {
		uint16_t tl;
		memcpy(&tl, m->tags + tbytes, 2);
		tbytes += 2 + (size_t)tl;
	}
	char *buf = malloc(1 + tbytes + m->attach_len);
	if (!buf)
		return -ENOMEM;
	size_t n = 0;
	buf[n++] = (char)m->ntags;
	const char *p = m->tags;
	for (unsigned k = 0; k < m->ntags; k++) {
		uint16_t tl;
		memcpy(&tl, p, 2);
		buf[n++] = (char)(tl & 0xff);
		buf[n++] = (char)(tl >> 8);
		memcpy(buf + n, p + 2, tl);
		n += tl;
		p += 2 + tl;
	}
	if (m->attach_len) {
		memcpy(buf + n, m->attach, m->attach_len);
		n += m->attach_len;
	}
	char key[OBJ_CLUSTER_WSSTATE_PREFIX_LEN + 8];
	int r = kv_write(obj, key, state_key(key, m->state_id), buf, n, 1);
	free(buf);
	if (r < 0)
		return r;
	m->state_saved = 1;
	return 0;
}

void obj_cluster_ws_forget(struct object *obj, uint64_t state_id)
{
	char key[OBJ_CLUSTER_WSSTATE_PREFIX_LEN + 8];
	if (kv_write(obj, key, state_key(key, state_id), NULL, 0, 0) < 0)
		log_warn("class %s: the stored attachment of a closed relayed WebSocket could not "
			 "be deleted", obj->cls->name);
}

void obj_cluster_ws_member_free(struct ws_member *m)
{
	free(m->state_pending);
	m->state_pending = NULL;
	m->state_pending_len = 0;
}
