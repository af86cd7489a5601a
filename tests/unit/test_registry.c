/* The class registry: classes are found by name; a second class of a name already taken,
 * an empty name or one too long is refused, and the first refusal is kept for durod to
 * report at start (DURO_CLASS cannot return it). */
#include "check.h"
#include "obj.h"

#include <errno.h>
#include <string.h>

static int handle(struct duro_object *o, const struct duro_request *req, struct duro_response *res)
{
	(void)o;
	(void)req;
	return duro_res_text(res, 200, "ok");
}

static const struct duro_class first = { .name = "Twice", .on_request = handle };
static const struct duro_class second = { .name = "Twice", .on_request = handle };
static const struct duro_class other = { .name = "Other", .on_request = handle };
static const struct duro_class unnamed = { .name = "", .on_request = handle };
DURO_CLASS(first)

static void test_found_by_name(void)
{
	CHECK(obj_find_class("Twice") == &first);
	CHECK(obj_find_class("Nope") == NULL);
	char err[200];
	CHECK_EQ(obj_registry_check(err, sizeof(err)), 0);
}

static void test_duplicate_is_refused_and_kept(void)
{
	CHECK_EQ(duro_register_class(&second), -EEXIST);
	CHECK(obj_find_class("Twice") == &first); /* the first stays */
	CHECK_EQ(duro_register_class(&unnamed), -EINVAL);
	CHECK_EQ(duro_register_class(&other), 0);
	char err[200] = "";
	CHECK_EQ(obj_registry_check(err, sizeof(err)), -EINVAL);
	/* The first refusal is the one reported, naming the class. */
	CHECK(strstr(err, "\"Twice\"") && strstr(err, "already registered"));
}

int main(void)
{
	RUN(test_found_by_name);
	RUN(test_duplicate_is_refused_and_kept);
	return CHECK_DONE();
}
