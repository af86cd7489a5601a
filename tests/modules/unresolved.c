/* A module that calls into durod beyond the duro_* API (obj_find_class is durod's own,
 * not exported to modules): its load must fail, naming the symbol. */
#include "duro.h"

const struct duro_class *obj_find_class(const char *name);

static int on_request(struct duro_object *obj, const struct duro_request *req,
		      struct duro_response *res)
{
	(void)obj;
	(void)req;
	return duro_res_text(res, 200, obj_find_class("Counter") ? "found" : "none");
}

static const struct duro_class reach_class = { "Reach", 0, NULL, on_request, NULL, NULL, NULL,
					       NULL, NULL };
DURO_CLASS(reach_class)
