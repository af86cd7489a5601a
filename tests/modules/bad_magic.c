/* A magic block that is wrong in one way (tests/integration/test_modules.py links it, with
 * -DBAD_MAJOR=2 or -DBAD_MINOR=1 or -DBAD_CLASS_SIZE=8, beside versioned.c): a strong
 * definition, so it replaces the weak one duro.h gives every module file (this file
 * includes duro.h as a non-module would, for the struct alone). */
#undef DURO_MODULE
#include "duro.h"

#ifndef BAD_MAJOR
#define BAD_MAJOR 0
#endif
#ifndef BAD_MINOR
#define BAD_MINOR 0
#endif
#ifndef BAD_CLASS_SIZE
#define BAD_CLASS_SIZE 0
#endif

const struct duro_module_magic duro_module_magic = {
	DURO_MODULE_MAGIC, sizeof(struct duro_module_magic), DURO_API_VERSION_MAJOR + BAD_MAJOR,
	DURO_API_VERSION_MINOR + BAD_MINOR, sizeof(void *), sizeof(struct duro_class) + BAD_CLASS_SIZE,
	sizeof(struct duro_str), sizeof(struct duro_kv), sizeof(struct duro_list_options),
	sizeof(struct duro_alarm_info), DURO_ID_BYTES, DURO_MAX_KEY,
};
