/* Opening objects' SQL connections ahead, on a thread of each core: a request for an
 * object of a namespace that uses SQL, whose connection is not open, waits (parked) while
 * the core's opener thread opens it, runs duro's PRAGMAs (SQLite parses the schema for
 * the first), prepares BEGIN and COMMIT and the statements the namespace's connections
 * kept first; the core runs the request when the connection comes back. That is most of
 * what a new database costs SQLite (research/sql.md §6: multi-thread mode lets an idle
 * connection change threads), and the core runs other objects meanwhile.
 *
 *   core: park ex --job--> [SPSC queue] --> opener: open, PRAGMAs, prepares
 *   core: attach, run parked <--MSG_SQL_OPENED (core_post_wake)--'
 *
 * While a job is out the opener owns the connection and the SQLite side of the object's
 * struct obj_sql; the core touches neither: any other event of the object first waits for
 * the job (claim() in sql.c), which is rare (an alarm or a socket message in the ~50 µs of
 * an open). Only databases with no pages held in memory are opened ahead, so the opener's
 * reads go to RocksDB alone, never to the core's page map.
 *
 * Off unless sql.open_ahead: on a box with no CPU to spare beside its cores the hand-off
 * costs more than it saves (the core then sleeps and is woken for each open, and frees
 * memory from the opener's malloc arena; bench/README.md has the figures). */
#include "sql.h"
#include "sql_int.h"
#include "base_assert.h"
#include "commit.h"
#include "core.h"
#include "http.h"
#include "kv.h"
#include "log.h"
#include "object.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SQL_AHEAD_DEPTH 256 /* jobs queued to one opener; beyond it the core opens itself */

/* A single-producer (the core), single-consumer (the opener) queue of jobs. */
struct sql_ahead {
	struct core_group *g;
	unsigned core;
	pthread_t thread;
	sem_t sem;
	_Atomic int stop;
	_Atomic uint32_t head, tail;
	struct sql_ahead_job *q[SQL_AHEAD_DEPTH];
	struct io_uring ring; /* to wake the core when it sleeps */
	struct sql_ahead_job *jobs; /* the core's: sent, not heard back */
};

/* ---- the opener thread ---- */

static void job_run(struct sql_ahead_job *j)
{
	struct obj_sql *sq = j->sq;
	struct sqlite3 *db = NULL;
	j->rc = sql_conn_setup(sq, &db, j->err, sizeof(j->err));
	if (j->rc != SQLITE_OK)
		return;
	/* Every event that writes runs these two. One that fails here is prepared again at
	 * its first use on the core, where a failure has its message. */
	sq->internal = 1;
	(void)sql_prepare_internal(sq, db, SQL_BEGIN);
	(void)sql_prepare_internal(sq, db, SQL_COMMIT);
	sq->internal = 0;
	/* Under the authorizer: one the class's earlier connections passed may still be
	 * refused here (then prepared, and refused with its message, on the core). */
	for (unsigned i = 0; i < j->n; i++) {
		/* A schema statement (the class's CREATE) is prepared ahead for a new database
		 * only: an existing one has its tables. */
		if (sq->size && sql_stmt_is_ddl(j->text[i], j->len[i]))
			continue;
		j->st[i] = sql_prepare_ahead(sq, db, j->text[i], j->len[i]);
	}
	j->db = db;
}

static void *opener_main(void *arg)
{
	struct sql_ahead *a = arg;
	char name[16];
	snprintf(name, sizeof(name), "sql-open-%u", a->core);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		while (sem_wait(&a->sem) < 0 && errno == EINTR)
			;
		if (atomic_load_explicit(&a->stop, memory_order_acquire))
			return NULL;
		uint32_t t = atomic_load_explicit(&a->tail, memory_order_relaxed);
		DURO_ASSERT(t != atomic_load_explicit(&a->head, memory_order_acquire)); /* one post per job */
		struct sql_ahead_job *j = a->q[t % SQL_AHEAD_DEPTH];
		atomic_store_explicit(&a->tail, t + 1, memory_order_release);
		job_run(j);
		atomic_store_explicit(&j->done, 1, memory_order_release);
		/* A full post ring drains within a turn of the core (unless it is stopping: the
		 * job, claimed by then, is freed with the opener). */
		while (core_post_wake(a->g, a->core, &j->msg, &a->ring) < 0 &&
		       !atomic_load_explicit(&a->stop, memory_order_acquire))
			usleep(100);
	}
}

/* ---- the core's side ---- */

static void job_unlink(struct sql_ahead_job *j)
{
	*j->pprev = j->next;
	if (j->next)
		j->next->pprev = j->pprev;
}

static void on_opened(struct core *c, struct core_msg *m)
{
	struct sql_ahead_job *j = (struct sql_ahead_job *)m;
	job_unlink(j);
	if (j->sq)
		sql_ahead_attach(j);
	struct object *obj = object_find(c, &j->id);
	free(j);
	/* The object's waiting requests run now, unless it went meanwhile (they were
	 * answered then) or waits for another open (that one's answer runs them). */
	if (obj && obj->sql && obj->sql->parked && !obj->sql->ahead_job)
		c->obj->sql->run_parked(c, obj);
}

void sql_ahead_init(struct core *c, void (*run_parked)(struct core *c, struct object *obj))
{
	c->obj->sql->run_parked = run_parked;
	core_set_msg_handler(c, MSG_SQL_OPENED, on_opened);
}

/* The opener thread, at the first job: on any CPU but the core's own (it would inherit
 * the core's pinning, and the kernel puts a thread the core wakes beside it: then the
 * core would wait for the opens it meant to hand off), or anywhere when the core's CPUs
 * are all there is. */
static struct sql_ahead *opener_start(struct core *c)
{
	struct sql_ahead *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->g = c->group;
	a->core = c->index;
	if (sem_init(&a->sem, 0, 0) < 0) {
		free(a);
		return NULL;
	}
	if (io_uring_queue_init(4, &a->ring, 0) < 0) {
		sem_destroy(&a->sem);
		free(a);
		return NULL;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	cpu_set_t all, own, other;
	CPU_ZERO(&all);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++)
		CPU_SET((int)i, &all);
	CPU_ZERO(&own);
	if (pthread_getaffinity_np(pthread_self(), sizeof(own), &own) != 0)
		CPU_ZERO(&own);
	CPU_XOR(&other, &all, &own);
	CPU_AND(&other, &other, &all);
	pthread_attr_setaffinity_np(&attr, sizeof(all), CPU_COUNT(&other) ? &other : &all);
	int r = pthread_create(&a->thread, &attr, opener_main, a);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		log_warn("sql: core %u: the connection opener thread would not start (%s): connections open on the core",
			 c->index, strerror(r));
		io_uring_queue_exit(&a->ring);
		sem_destroy(&a->sem);
		free(a);
		return NULL;
	}
	return a;
}

void sql_ahead_fini(struct core *c)
{
	struct sql_core *sc = c->obj ? c->obj->sql : NULL;
	struct sql_ahead *a = sc ? sc->ahead : NULL;
	if (a) {
		atomic_store_explicit(&a->stop, 1, memory_order_release);
		sem_post(&a->sem);
		pthread_join(a->thread, NULL);
		/* Jobs whose answer no turn will read (their objects were unloaded and waited
		 * for them, so each is claimed). */
		while (a->jobs) {
			struct sql_ahead_job *j = a->jobs;
			DURO_ASSERT(!j->sq);
			job_unlink(j);
			free(j);
		}
		io_uring_queue_exit(&a->ring);
		sem_destroy(&a->sem);
		free(a);
		sc->ahead = NULL;
	}
}

int sql_ahead_park(struct core *c, struct object *obj, struct http_exchange *ex)
{
	struct sql_core *sc = c->obj->sql;
	if (!c->obj->rt->cfg->sql.open_ahead)
		return 0;
	struct obj_sql *sq = obj->sql;
	if (!sq || (!sq->ahead_job && !sq->parked)) {
		/* Nothing waits: open ahead only a closed connection of a namespace that uses SQL. */
		if (sq && sq->db)
			return 0;
		struct sql_ns *n = sql_ns_of(sc, obj->ns->index, 0);
		if (!n || !n->uses)
			return 0;
		if (!sq) {
			/* The size record, read as an event would (outside one, as on_load runs). */
			obj->running = 1;
			kv_event_begin(obj);
			int r = sql_state(obj, &sq);
			kv_event_rollback(c, obj);
			obj->running = 0;
			if (r < 0)
				return 0;
		}
		/* Pages held in memory are the core's page map: that database opens here. */
		if (sq->count || sq->txn || (sq->wiped_seq && sq->wiped_seq > commit_applied_seq(c)))
			return 0;
		sq->wiped_seq = 0; /* applied: the opener's reads need not ask the core */
		if (!sc->ahead && !(sc->ahead = opener_start(c)))
			return 0;
		struct sql_ahead *a = sc->ahead;
		uint32_t h = atomic_load_explicit(&a->head, memory_order_relaxed);
		if (h - atomic_load_explicit(&a->tail, memory_order_acquire) >= SQL_AHEAD_DEPTH) {
			sc->ahead_full++;
			return 0;
		}
		struct sql_ahead_job *j = calloc(1, sizeof(*j));
		if (!j)
			return 0;
		j->msg.type = MSG_SQL_OPENED;
		j->sq = sq;
		j->id = obj->id;
		j->ns = obj->ns->index;
		if ((n = sql_ns_of(sc, j->ns, 0))) {
			j->n = n->n;
			for (unsigned i = 0; i < n->n; i++) {
				j->text[i] = n->text[i];
				j->len[i] = n->len[i];
			}
		}
		sq->ahead = 1;
		sq->ahead_job = j;
		j->next = a->jobs;
		if (a->jobs)
			a->jobs->pprev = &j->next;
		j->pprev = &a->jobs;
		a->jobs = j;
		a->q[h % SQL_AHEAD_DEPTH] = j;
		atomic_store_explicit(&a->head, h + 1, memory_order_release);
		sem_post(&a->sem);
	}
	/* Behind the open, and behind the requests already waiting (their order kept). */
	ex->msg.next = NULL;
	if (sq->parked_tail)
		sq->parked_tail->msg.next = &ex->msg;
	else
		sq->parked = ex;
	sq->parked_tail = ex;
	obj->ndeferred++;
	return 1;
}
