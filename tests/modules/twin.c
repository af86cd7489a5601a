/* Twin: one module with two classes, for deploys that name one of them. TwinA is the
 * Versioned class under another name (its answers marked MARKER); TwinB answers
 * "TwinB <MARKER>" to every request. */
#define CLASS_NAME "TwinA"
#include "versioned.c"

static int twin_b_request(struct duro_object *obj, const struct duro_request *req,
			  struct duro_response *res)
{
	(void)obj;
	(void)req;
	return duro_res_text(res, 200, "TwinB " MARKER);
}

static const struct duro_class twin_b_class = { .name = "TwinB", .on_request = twin_b_request };
DURO_CLASS(twin_b_class)
