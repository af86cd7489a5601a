/* How operators name things in control requests: a class by its class or binding name,
 * an object by its 64-hex ID or by a binding and a name (idFromName in that binding, as
 * the config's "name" routes compute it). */
#include "ctl_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ctl_class_ns(const char *cls)
{
	for (unsigned i = 0; i < obj_namespaces(); i++)
		if (!strcmp(obj_namespace_class(i), cls) || !strcmp(obj_namespace_binding(i), cls))
			return (int)i;
	return -1;
}

static json_t *unknown_binding(const char *binding)
{
	char list[512] = "";
	size_t n = 0;
	for (unsigned i = 0; i < obj_namespaces() && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
				      obj_namespace_binding(i));
	return ctl_error_reply("\"binding\": no binding \"%s\" (bindings: %s)", binding, list);
}

int ctl_object_of(json_t *req, unsigned *ns, struct duro_id *id, json_t **err)
{
	json_t *jid = json_object_get(req, "id"), *jb = json_object_get(req, "binding");
	json_t *jn = json_object_get(req, "name");
	if (jid && (jb || jn)) {
		*err = ctl_error_reply("name the object by \"id\" or by \"binding\" and \"name\", not both");
		return -EINVAL;
	}
	if (jb || jn) {
		const char *binding = json_string_value(jb), *name = json_string_value(jn);
		if (!binding || !name) {
			*err = ctl_error_reply("\"binding\" and \"name\": want both, as strings");
			return -EINVAL;
		}
		int r = obj_id_from_name(binding, name, json_string_length(jn), ns, id);
		if (r == -ENOENT)
			*err = unknown_binding(binding);
		else if (r < 0)
			*err = ctl_error_reply("\"name\": want 1 to %d bytes", DURO_MAX_NAME);
		return r;
	}
	const char *hex = json_string_value(jid);
	if (!hex) {
		*err = ctl_error_reply("want the object's \"id\" (64 hex digits), or its \"binding\" and \"name\"");
		return -EINVAL;
	}
	int r = obj_parse_id(hex, strlen(hex), ns, id);
	if (r == -EINVAL)
		*err = ctl_error_reply("\"id\": malformed: want 64 hex digits");
	else if (r < 0)
		*err = ctl_error_reply("\"id\": no namespace of this durod minted %s", hex);
	return r;
}
