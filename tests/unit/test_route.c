/* The router: name, ID and generic routes, first prefix wins, percent-decoding, the
 * subpath, and every refusal with its status. */
#include "check.h"
#include "obj.h"
#include "route.h"

#include <string.h>

static struct duro_namespace ns[2];
static struct obj_binding bindings[2] = { { .name = "COUNTER" }, { .name = "KV" } };
static struct obj_view view;

static void add_route(const char *prefix, enum obj_route_kind kind, int binding)
{
	struct obj_route *r = &view.routes[view.nroutes++];
	snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
	r->kind = kind;
	r->binding = binding;
}

static void setup(void)
{
	for (unsigned i = 0; i < 2; i++) {
		uint8_t secret[32];
		for (int k = 0; k < 32; k++)
			secret[k] = (uint8_t)(k * (i + 3));
		ns[i].index = i;
		ns[i].binding = &bindings[i];
		obj_namespace_keys(&ns[i], secret);
		view.ns[i].ns = &ns[i];
	}
	view.nns = 2;
	add_route("/counter/", ROUTE_NAME, 0);
	add_route("/counters/", ROUTE_ID, 0);
	add_route("/obj/", ROUTE_GENERIC, -1);
	add_route("/c/", ROUTE_NAME, 1);
}

static enum route_error match(const char *path, struct route_target *t)
{
	return route_match(&view, path, strlen(path), t);
}

static void test_name_route(void)
{
	struct route_target t;
	struct duro_id want;
	CHECK_EQ(match("/counter/hello/x/y", &t), ROUTE_OK);
	CHECK_EQ(t.ns, 0);
	CHECK_EQ(duro_id_from_name(&ns[0], "hello", 5, &want), 0);
	CHECK(memcmp(&t.id, &want, sizeof(want)) == 0);
	CHECK_EQ(t.subpath_off, strlen("/counter/hello"));
	CHECK_EQ(t.name_off, strlen("/counter/"));
	CHECK_EQ(t.name_len, 5);
	CHECK(!t.minted);
	/* No subpath, and a percent-encoded name is the decoded one. */
	CHECK_EQ(match("/counter/hello", &t), ROUTE_OK);
	CHECK_EQ(t.subpath_off, strlen("/counter/hello"));
	struct route_target u;
	CHECK_EQ(match("/counter/h%65llo", &u), ROUTE_OK);
	CHECK(memcmp(&u.id, &want, sizeof(want)) == 0);
	/* The same name in another binding is another object. */
	CHECK_EQ(match("/c/hello", &u), ROUTE_OK);
	CHECK_EQ(u.ns, 1);
	CHECK(memcmp(&u.id, &want, sizeof(want)) != 0);
}

static void test_id_and_generic_routes(void)
{
	struct duro_id id;
	char hex[DURO_ID_HEX + 1], path[200];
	CHECK_EQ(duro_id_new(&ns[0], &id), 0);
	duro_id_to_string(&id, hex);
	struct route_target t;
	snprintf(path, sizeof(path), "/counters/%s/sub", hex);
	CHECK_EQ(match(path, &t), ROUTE_OK);
	CHECK(memcmp(&t.id, &id, sizeof(id)) == 0);
	CHECK_EQ(t.subpath_off, strlen("/counters/") + 64);
	CHECK_EQ(t.name_len, 0);
	snprintf(path, sizeof(path), "/obj/COUNTER/%s", hex);
	CHECK_EQ(match(path, &t), ROUTE_OK);
	CHECK_EQ(t.ns, 0);
	CHECK(memcmp(&t.id, &id, sizeof(id)) == 0);
	/* An ID minted by COUNTER is foreign to KV. */
	snprintf(path, sizeof(path), "/obj/KV/%s", hex);
	CHECK_EQ(match(path, &t), ROUTE_FOREIGN_ID);
	CHECK_EQ(route_error_status(ROUTE_FOREIGN_ID), 404);
	/* new mints an ID of the binding. */
	CHECK_EQ(match("/obj/KV/new", &t), ROUTE_OK);
	CHECK(t.minted);
	CHECK_EQ(t.ns, 1);
	duro_id_to_string(&t.id, hex);
	struct duro_id back;
	CHECK_EQ(duro_id_from_string(&ns[1], hex, 64, &back), 0);
}

static void test_refusals(void)
{
	struct route_target t;
	CHECK_EQ(match("/nothing/here", &t), ROUTE_NO_ROUTE);
	CHECK_EQ(match("/counter", &t), ROUTE_NO_ROUTE); /* the prefix ends with '/' */
	CHECK_EQ(match("/obj/NOPE/new", &t), ROUTE_NO_BINDING);
	CHECK_EQ(match("/counter/", &t), ROUTE_BAD_NAME);
	CHECK_EQ(match("/counter/%zz", &t), ROUTE_BAD_NAME);
	CHECK_EQ(match("/counter/%4", &t), ROUTE_BAD_NAME);
	CHECK_EQ(match("/counters/abc", &t), ROUTE_BAD_ID);
	CHECK_EQ(match("/obj/COUNTER/new2", &t), ROUTE_BAD_ID);
	char name[400] = "/counter/";
	memset(name + 9, 'n', 257);
	name[9 + 257] = 0;
	CHECK_EQ(match(name, &t), ROUTE_BAD_NAME);
	name[9 + 256] = 0;
	CHECK_EQ(match(name, &t), ROUTE_OK);
	static char huge[70000];
	memcpy(huge, "/counter/", 9);
	memset(huge + 9, 'a', sizeof(huge) - 10);
	CHECK_EQ(match(huge, &t), ROUTE_TOO_LONG);
	CHECK_EQ(route_error_status(ROUTE_BAD_NAME), 400);
	CHECK_EQ(route_error_status(ROUTE_BAD_ID), 400);
	CHECK_EQ(route_error_status(ROUTE_NO_ROUTE), 404);
	CHECK_EQ(route_error_status(ROUTE_TOO_LONG), 414);
	CHECK(strlen(route_error_text(ROUTE_NO_BINDING)) > 0);
}

static void test_first_prefix_wins(void)
{
	/* "/c/" is listed after "/counter/": a path under both takes the first. */
	struct route_target t;
	CHECK_EQ(match("/c/x", &t), ROUTE_OK);
	CHECK_EQ(t.ns, 1);
	add_route("/counter/special/", ROUTE_NAME, 1);
	CHECK_EQ(match("/counter/special/x", &t), ROUTE_OK);
	CHECK_EQ(t.ns, 0); /* "/counter/" comes first: its name is "special" */
	view.nroutes--;
}

int main(void)
{
	setup();
	RUN(test_name_route);
	RUN(test_id_and_generic_routes);
	RUN(test_refusals);
	RUN(test_first_prefix_wins);
	return CHECK_DONE();
}
