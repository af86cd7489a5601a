/* The reactor: one poll loop per lcore. Each turn reads top to bottom: timers, inbound
 * rings, io_uring completions, end-of-turn hooks (sends, commits), outbound rings, submit. */
#include "core.h"
#include "timer.h"
#include "base_assert.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_ring.h>

/* Enough SQEs for a burst of sends and receives in one turn; the SQ is flushed early
 * when it fills (core_sqe). */
#define CORE_SQ_ENTRIES 4096
#define CORE_CQ_ENTRIES 16384
#define CORE_CQE_BATCH 256
/* Longest sleep when idle: bounds timer lateness when no event wakes the core. */
#define CORE_SLEEP_MAX_US 5000
/* After the loop, how long a core waits for file I/O still in the kernel's hands (whose
 * buffers must outlive it) before tearing down anyway. */
#define CORE_DRAIN_IO_MS 3000
/* Posts from other threads waiting for one core (control-plane traffic: small). */
#define CORE_POST_RING 1024

static void core_cqe_internal(struct core *c, void *ptr, struct io_uring_cqe *cqe)
{
	(void)c;
	(void)ptr;
	(void)cqe; /* wake-up messages carry nothing: waking was the point */
}

int core_group_init(struct core_group *g, unsigned ncores, unsigned ring_size)
{
	DURO_ASSERT(ncores >= 1 && ncores <= DURO_MAX_CORES);
	g->ncores = ncores;
	g->ring_size = ring_size;
	for (unsigned i = 0; i < ncores; i++) {
		struct core *c = aligned_alloc(64, sizeof(*c));
		if (!c)
			return -ENOMEM;
		memset(c, 0, sizeof(*c));
		c->index = i;
		c->group = g;
		c->cqe_handler[CQE_CORE] = core_cqe_internal;
		g->cores[i] = c;
	}
	/* Posts from other threads: many producers, the core the only consumer. */
	for (unsigned i = 0; i < ncores; i++) {
		char name[RTE_RING_NAMESIZE];
		snprintf(name, sizeof(name), "duro_post_%u", i);
		g->cores[i]->posts = rte_ring_create(name, CORE_POST_RING, SOCKET_ID_ANY, RING_F_SC_DEQ);
		if (!g->cores[i]->posts) {
			log_error("rte_ring_create %s: %s", name, rte_strerror(rte_errno));
			return -rte_errno;
		}
	}
	/* One single-producer single-consumer ring per ordered pair of cores. */
	for (unsigned dst = 0; dst < ncores; dst++) {
		for (unsigned src = 0; src < ncores; src++) {
			if (src == dst)
				continue;
			char name[RTE_RING_NAMESIZE];
			snprintf(name, sizeof(name), "duro_%u_%u", src, dst);
			struct rte_ring *r = rte_ring_create(name, ring_size, SOCKET_ID_ANY,
							     RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (!r) {
				log_error("rte_ring_create %s: %s", name, rte_strerror(rte_errno));
				return -rte_errno;
			}
			g->cores[dst]->inbox[src] = r;
		}
	}
	return 0;
}

void core_group_destroy(struct core_group *g)
{
	for (unsigned i = 0; i < g->ncores; i++) {
		struct core *c = g->cores[i];
		if (!c)
			continue;
		for (unsigned s = 0; s < g->ncores; s++)
			if (c->inbox[s])
				rte_ring_free(c->inbox[s]);
		if (c->posts)
			rte_ring_free(c->posts);
		free(c);
		g->cores[i] = NULL;
	}
}

struct io_uring_sqe *core_sqe(struct core *c)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
	while (!sqe) {
		int r = io_uring_submit(&c->ring);
		if (r < 0 && r != -EBUSY && r != -EAGAIN)
			log_warn("core %u: io_uring_submit: %s", c->index, strerror(-r));
		sqe = io_uring_get_sqe(&c->ring);
	}
	return sqe;
}

void core_sqe_reserve(struct core *c, unsigned n)
{
	while (io_uring_sq_space_left(&c->ring) < n) {
		int r = io_uring_submit(&c->ring);
		if (r < 0 && r != -EBUSY && r != -EAGAIN)
			log_warn("core %u: io_uring_submit: %s", c->index, strerror(-r));
	}
}

void core_set_cqe_handler(struct core *c, enum core_cqe_kind kind, core_cqe_fn *fn)
{
	DURO_ASSERT(kind < CQE_KINDS);
	c->cqe_handler[kind] = fn;
}

void core_set_msg_handler(struct core *c, enum core_msg_type type, core_msg_fn *fn)
{
	DURO_ASSERT(type < MSG_TYPES);
	c->msg_handler[type] = fn;
}

void core_add_hook(struct core *c, core_hook_fn *fn)
{
	DURO_ASSERT(c->nhooks < CORE_MAX_HOOKS);
	c->hooks[c->nhooks++] = fn;
}

void core_add_poller(struct core *c, core_poll_fn *fn)
{
	DURO_ASSERT(c->npollers < CORE_MAX_POLLERS);
	c->pollers[c->npollers++] = fn;
}

void core_send(struct core *c, unsigned dst, struct core_msg *m)
{
	DURO_ASSERT(dst < c->group->ncores);
	m->src_core = (uint16_t)c->index;
	m->next = NULL;
	if (dst == c->index) {
		if (c->local_tail)
			c->local_tail->next = m;
		else
			c->local_head = m;
		c->local_tail = m;
		return;
	}
	struct core_outbox *ob = &c->outbox[dst];
	/* Behind an overflow queue nothing may overtake: keep order per destination. */
	if (ob->overflow_head || ob->nstaged == CORE_MSG_BURST) {
		if (ob->overflow_tail)
			ob->overflow_tail->next = m;
		else
			ob->overflow_head = m;
		ob->overflow_tail = m;
		return;
	}
	ob->staged[ob->nstaged++] = m;
}

int core_post(struct core_group *g, unsigned dst, struct core_msg *m)
{
	DURO_ASSERT(dst < g->ncores);
	m->src_core = UINT16_MAX; /* not a core: there is nobody to reply to by ring */
	m->next = NULL;
	return rte_ring_mp_enqueue(g->cores[dst]->posts, m) == 0 ? 0 : -ENOBUFS;
}

int core_post_wake(struct core_group *g, unsigned dst, struct core_msg *m, struct io_uring *own)
{
	int r = core_post(g, dst, m);
	if (r < 0)
		return r;
	struct core *d = g->cores[dst];
	/* As wake_core: the post is visible before `sleeping` is read. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&d->sleeping, memory_order_relaxed) || !atomic_exchange(&d->sleeping, 0))
		return 0;
	struct io_uring_sqe *sqe = io_uring_get_sqe(own);
	if (!sqe)
		return 0; /* the core still sees the post within its longest sleep */
	io_uring_prep_msg_ring(sqe, d->ring.ring_fd, 0, core_tag(NULL, CQE_CORE), 0);
	io_uring_sqe_set_data64(sqe, 0);
	io_uring_submit(own);
	/* The send's own completion: reaped so the small ring never fills. */
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(own, &cqe) == 0)
		io_uring_cqe_seen(own, cqe);
	return 0;
}

static void dispatch_msg(struct core *c, struct core_msg *m)
{
	core_msg_fn *fn = m->type < MSG_TYPES ? c->msg_handler[m->type] : NULL;
	DURO_ASSERT(fn);
	c->stats.msgs_in++;
	fn(c, m);
}

/* Wakes dst if it went to sleep: a message on its own io_uring ends its wait. */
static void wake_core(struct core *c, struct core *dst)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&dst->sleeping, memory_order_relaxed))
		return;
	if (!atomic_exchange(&dst->sleeping, 0))
		return;
	struct io_uring_sqe *sqe = core_sqe(c);
	io_uring_prep_msg_ring(sqe, dst->ring.ring_fd, 0, core_tag(NULL, CQE_CORE), 0);
	/* The wake-up's own completion on this ring is noise; do not ask for it. */
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, core_tag(NULL, CQE_CORE));
	c->stats.wakes_sent++;
}

static void flush_outboxes(struct core *c)
{
	struct core_group *g = c->group;
	for (unsigned d = 0; d < g->ncores; d++) {
		struct core_outbox *ob = &c->outbox[d];
		if (ob->nstaged == 0)
			continue;
		struct rte_ring *r = g->cores[d]->inbox[c->index];
		unsigned sent = rte_ring_enqueue_burst(r, (void **)ob->staged, ob->nstaged, NULL);
		c->stats.msgs_out += sent;
		if (sent < ob->nstaged) {
			ob->ring_full++;
			memmove(ob->staged, ob->staged + sent,
				(ob->nstaged - sent) * sizeof(ob->staged[0]));
		}
		ob->nstaged -= sent;
		/* Refill the staging array from the overflow queue, in order. */
		while (ob->nstaged < CORE_MSG_BURST && ob->overflow_head) {
			struct core_msg *m = ob->overflow_head;
			ob->overflow_head = m->next;
			if (!ob->overflow_head)
				ob->overflow_tail = NULL;
			ob->staged[ob->nstaged++] = m;
		}
		if (sent)
			wake_core(c, g->cores[d]);
		if (ob->nstaged)
			c->work++; /* retry next turn rather than sleep on undelivered messages */
	}
}

static unsigned drain_inboxes(struct core *c)
{
	struct core_group *g = c->group;
	unsigned n = 0;
	/* Messages to self queued last turn; new ones queued now wait for the next. */
	struct core_msg *m = c->local_head;
	c->local_head = c->local_tail = NULL;
	while (m) {
		struct core_msg *next = m->next;
		dispatch_msg(c, m);
		n++;
		m = next;
	}
	for (unsigned s = 0; s < g->ncores; s++) {
		if (!c->inbox[s])
			continue;
		void *burst[CORE_MSG_BURST];
		unsigned got = rte_ring_dequeue_burst(c->inbox[s], burst, CORE_MSG_BURST, NULL);
		for (unsigned i = 0; i < got; i++)
			dispatch_msg(c, burst[i]);
		n += got;
	}
	void *burst[CORE_MSG_BURST];
	unsigned got = rte_ring_sc_dequeue_burst(c->posts, burst, CORE_MSG_BURST, NULL);
	for (unsigned i = 0; i < got; i++)
		dispatch_msg(c, burst[i]);
	return n + got;
}

/* rte_ring_count's arithmetic, but with atomic loads of the tails: it reads them plainly
 * while the other side stores them, a data race in C11's sense (and for ThreadSanitizer).
 * Sequentially consistent for the producer's tail, so a core that announced it sleeps (a
 * seq_cst store) and then finds its inbox empty cannot miss a message whose sender then
 * reads `sleeping` as 0 (wake_core's fence). */
static unsigned ring_count(const struct rte_ring *r)
{
	uint32_t prod = __atomic_load_n(&r->prod.tail, __ATOMIC_SEQ_CST);
	uint32_t cons = __atomic_load_n(&r->cons.tail, __ATOMIC_RELAXED);
	uint32_t n = (prod - cons) & r->mask;
	return n > r->capacity ? r->capacity : n;
}

unsigned core_inbox_count(const struct core *c, unsigned from)
{
	const struct rte_ring *r = c->inbox[from];
	if (!r)
		return 0;
	return ring_count(r);
}

static int inboxes_empty(struct core *c)
{
	if (c->local_head || ring_count(c->posts))
		return 0;
	for (unsigned s = 0; s < c->group->ncores; s++)
		if (core_inbox_count(c, s))
			return 0;
	return 1;
}

static unsigned reap_cqes(struct core *c)
{
	struct io_uring_cqe *cqes[CORE_CQE_BATCH];
	unsigned total = 0;
	for (;;) {
		unsigned n = io_uring_peek_batch_cqe(&c->ring, cqes, CORE_CQE_BATCH);
		for (unsigned i = 0; i < n; i++) {
			struct io_uring_cqe *cqe = cqes[i];
			uint64_t ud = cqe->user_data;
			core_cqe_fn *fn = c->cqe_handler[ud & 7];
			DURO_ASSERT(fn);
			fn(c, (void *)(uintptr_t)(ud & ~(uint64_t)7), cqe);
		}
		io_uring_cq_advance(&c->ring, n);
		total += n;
		if (n < CORE_CQE_BATCH)
			break;
	}
	c->stats.cqes += total;
	return total;
}

static int core_ring_setup(struct core *c)
{
	struct io_uring_params p = { 0 };
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = CORE_CQ_ENTRIES;
	int r = io_uring_queue_init_params(CORE_SQ_ENTRIES, &c->ring, &p);
	if (r < 0) {
		/* Older kernels: no DEFER_TASKRUN. Correct either way, just more interrupts. */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = CORE_CQ_ENTRIES;
		r = io_uring_queue_init_params(CORE_SQ_ENTRIES, &c->ring, &p);
	}
	if (r < 0) {
		log_error("core %u: io_uring_queue_init: %s", c->index, strerror(-r));
		return r;
	}
	c->ring_ready = 1;
	/* io-wq workers (file I/O) may run on any CPU, not only the reactor's pinned one. Best
	 * effort: on the 6.18 kernel here the call succeeds but the workers still show only the
	 * reactor's CPU in /proc (they inherit the pinned task's affinity), one more reason
	 * commit logs use direct I/O, which needs no worker. */
	cpu_set_t all;
	CPU_ZERO(&all);
	for (int i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &all);
	io_uring_register_iowq_aff(&c->ring, sizeof(all), &all);
	return 0;
}

/* Messages staged or queued behind a full ring, not yet on any ring. */
static int outboxes_pending(const struct core *c)
{
	for (unsigned i = 0; i < c->group->ncores; i++)
		if (c->outbox[i].nstaged || c->outbox[i].overflow_head)
			return 1;
	return 0;
}

static void core_loop(struct core *c)
{
	struct core_group *g = c->group;
	uint64_t idle_since_ns = 0;
	while (!atomic_load_explicit(&g->stop_now, memory_order_relaxed)) {
		uint64_t t0 = clock_now_ns();
		c->now_ns = t0;
		c->now_ms = t0 / 1000000ull;
		c->work = 0;
		c->stats.loops++;

		c->work += timer_run(c, c->now_ms);
		c->work += drain_inboxes(c);
		for (unsigned i = 0; i < c->npollers; i++)
			c->work += c->pollers[i](c);
		c->work += reap_cqes(c);
		for (unsigned i = 0; i < c->nhooks; i++)
			c->hooks[i](c);
		flush_outboxes(c);

		if (c->work) {
			idle_since_ns = 0;
			io_uring_submit_and_get_events(&c->ring);
			c->stats.busy_ns += clock_now_ns() - t0;
			continue;
		}
		if (!idle_since_ns)
			idle_since_ns = t0;
		if (!c->offloaded && t0 - idle_since_ns < (uint64_t)g->idle_spin_us * 1000ull) {
			/* Polling, not working: a thread waiting for this CPU (a client, a peer box,
			 * a storage worker on a machine with few CPUs) runs first. Without the
			 * yield a woken thread can wait out the whole spin on a busy-polling CPU:
			 * a request forwarded between two spinning boxes took 455 us against 18 us
			 * direct on two CPUs. With nothing else runnable it returns at once. */
			sched_yield();
			io_uring_submit_and_get_events(&c->ring);
			continue;
		}
		/* Sleep: announce it, then look once more so no message slips between. */
		atomic_store(&c->sleeping, 1);
		if (!inboxes_empty(c)) {
			atomic_store(&c->sleeping, 0);
			continue;
		}
		unsigned sleep_us = c->max_sleep_us ? c->max_sleep_us : CORE_SLEEP_MAX_US;
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = (long long)sleep_us * 1000 };
		struct io_uring_cqe *cqe;
		c->stats.sleeps++;
		io_uring_submit_and_wait_timeout(&c->ring, &cqe, 1, &ts, NULL);
		atomic_store(&c->sleeping, 0);
	}
}

static int core_main(void *arg)
{
	struct core *c = arg;
	struct core_group *g = c->group;
	c->lcore = rte_lcore_id();
	c->now_ns = clock_now_ns();
	c->now_ms = c->now_ns / 1000000ull;
	int r = core_ring_setup(c);
	if (r == 0)
		r = timer_wheel_create(c, c->now_ms);
	if (r == 0)
		buf_pool_init(&c->bufs, 0);
	if (r == 0 && g->core_start)
		r = g->core_start(c, g->arg);
	if (r < 0) {
		atomic_store(&g->start_failed, 1);
		atomic_store(&g->stop_now, 1);
	}
	atomic_fetch_add(&g->started, 1);
	/* Nobody serves until every core is up: a request may be routed to any of them. */
	while (atomic_load(&g->started) < g->ncores)
		rte_pause();
	if (r == 0 && !atomic_load(&g->start_failed) && g->core_serve) {
		r = g->core_serve(c, g->arg);
		if (r < 0) {
			atomic_store(&g->start_failed, 1);
			atomic_store(&g->stop_now, 1);
		}
	}
	if (r == 0)
		atomic_fetch_add(&g->serving, 1);
	if (r == 0 && !atomic_load(&g->start_failed))
		core_loop(c);
	uint64_t until = clock_now_ms() + CORE_DRAIN_IO_MS;
	while (c->ring_ready && c->file_ops && clock_now_ms() < until) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
		struct io_uring_cqe *cqe;
		io_uring_submit_and_wait_timeout(&c->ring, &cqe, 1, &ts, NULL);
		reap_cqes(c);
	}
	if (c->file_ops)
		log_warn("core %u: %u file operations still pending at exit", c->index, c->file_ops);
	/* Messages still on their way (a socket's batch going home to be freed, an event's
	 * return): once every core has left its loop and sent what it staged, each takes
	 * what was sent to it, so the last turn of one core is not lost on another. */
	for (int tries = 0; tries < 1000 && outboxes_pending(c); tries++) {
		flush_outboxes(c);
		rte_pause();
	}
	atomic_fetch_add(&g->exited, 1);
	while (atomic_load(&g->exited) < g->ncores)
		rte_pause();
	drain_inboxes(c);
	/* Messages point into their sender's memory: nobody frees until everyone has read. */
	atomic_fetch_add(&g->read_last, 1);
	while (atomic_load(&g->read_last) < g->ncores)
		rte_pause();
	if (g->core_stop)
		g->core_stop(c, g->arg);
	if (c->timers)
		timer_wheel_destroy(c);
	if (c->ring_ready) {
		io_uring_queue_exit(&c->ring);
		c->ring_ready = 0;
	}
	buf_pool_destroy(&c->bufs);
	/* Release: the caller of core_group_run frees what this core used last. */
	atomic_fetch_add_explicit(&g->finished, 1, memory_order_release);
	return r;
}

int core_group_run(struct core_group *g)
{
	unsigned lcore, i = 1;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		if (i >= g->ncores)
			break;
		int r = rte_eal_remote_launch(core_main, g->cores[i], lcore);
		if (r < 0) {
			log_error("rte_eal_remote_launch lcore %u: %s", lcore, strerror(-r));
			atomic_store(&g->start_failed, 1);
			atomic_store(&g->stop_now, 1);
			/* cores already launched see start_failed once all check in */
			atomic_fetch_add(&g->started, g->ncores - i);
			break;
		}
		i++;
	}
	DURO_ASSERT(i == g->ncores || atomic_load(&g->start_failed));
	int r0 = core_main(g->cores[0]);
	rte_eal_mp_wait_lcore();
	/* Every core that ran has finished (the EAL's wait says so); acquiring their count too
	 * orders their teardown before our frees in a way tools like TSan can see (the EAL is
	 * not built with it). i cores ran core_main, this one included. */
	while (atomic_load_explicit(&g->finished, memory_order_acquire) < i)
		rte_pause();
	if (atomic_load(&g->start_failed))
		return r0 < 0 ? r0 : -EIO;
	return 0;
}
