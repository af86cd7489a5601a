/* What an event's transaction spans across the kinds of storage: duro_txn_begin/commit/
 * rollback are savepoints of the key-value writes (kv.c) and of the SQL database (sql.c)
 * together, and delete_all empties both. */
#include "kv.h"
#include "sql.h"

#include <errno.h>

int duro_txn_begin(struct duro_object *o)
{
	struct object *obj = (struct object *)o;
	int r = kv_txn_begin(obj);
	if (r < 0)
		return r;
	if ((r = sql_txn_begin(obj)) < 0) {
		kv_txn_rollback(obj); /* nothing written since */
		return r;
	}
	return 0;
}

int duro_txn_commit(struct duro_object *o)
{
	struct object *obj = (struct object *)o;
	int r = kv_txn_commit(obj);
	if (r == 0)
		sql_txn_commit(obj);
	return r;
}

int duro_txn_rollback(struct duro_object *o)
{
	struct object *obj = (struct object *)o;
	int r = kv_txn_rollback(obj);
	if (r == 0)
		sql_txn_rollback(obj);
	return r;
}

int duro_delete_all(struct duro_object *o)
{
	struct object *obj = (struct object *)o;
	/* SQL first: it reads the database's size record, which the key-value delete_all
	 * takes away with every other key. */
	int r = sql_delete_all(obj);
	return r < 0 ? r : kv_delete_all(obj);
}
