/* The control plane's worker threads: requests that wait on cores, storage or files run
 * here, so the control thread never blocks on them; one backup (export or import) at a
 * time, the other workers stay free for short commands. */
#include "ctl_int.h"
#include "log.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTL_WORKERS 3

struct ctl_jobs {
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct ctl_job *queue, **queue_tail; /* FIFO, under lock */
	struct ctl_job *done;                /* under lock, any order */
	int stop;                            /* under lock */
	int backup;                          /* a backup queued or running; under lock */
	pthread_t thread[CTL_WORKERS];
	unsigned nthreads;
};

void ctl_job_free(struct ctl_job *job)
{
	json_decref(job->req);
	json_decref(job->reply);
	free(job);
}

static void *worker(void *arg)
{
	struct ctl *ctl = arg;
	struct ctl_jobs *js = ctl->jobs;
	pthread_mutex_lock(&js->lock);
	for (;;) {
		while (!js->queue && !js->stop)
			pthread_cond_wait(&js->more, &js->lock);
		if (js->stop)
			break;
		struct ctl_job *job = js->queue;
		js->queue = job->next;
		if (!js->queue)
			js->queue_tail = &js->queue;
		pthread_mutex_unlock(&js->lock);

		job->reply = ctl_request(ctl, job->req);

		pthread_mutex_lock(&js->lock);
		if (job->kind == CTL_REQ_BACKUP)
			js->backup = 0;
		job->next = js->done;
		js->done = job;
		uint64_t one = 1;
		if (write(ctl->wake_fd, &one, sizeof(one)) != sizeof(one))
			log_warn("control: wake: %s", strerror(errno));
	}
	pthread_mutex_unlock(&js->lock);
	return NULL;
}

int ctl_jobs_start(struct ctl *ctl)
{
	struct ctl_jobs *js = calloc(1, sizeof(*js));
	if (!js)
		return -ENOMEM;
	pthread_mutex_init(&js->lock, NULL);
	pthread_cond_init(&js->more, NULL);
	js->queue_tail = &js->queue;
	ctl->jobs = js;
	for (unsigned i = 0; i < CTL_WORKERS; i++) {
		int r = pthread_create(&js->thread[i], NULL, worker, ctl);
		if (r) {
			log_error("control: worker thread: %s", strerror(r));
			return -r;
		}
		/* Made from the main lcore, it would share core 0's CPU: let it run anywhere. */
		cpu_set_t all;
		CPU_ZERO(&all);
		for (long c = 0, n = sysconf(_SC_NPROCESSORS_ONLN); c < n && c < CPU_SETSIZE; c++)
			CPU_SET((int)c, &all);
		pthread_setaffinity_np(js->thread[i], sizeof(all), &all);
		pthread_setname_np(js->thread[i], "duro-ctl-work");
		js->nthreads++;
	}
	return 0;
}

int ctl_jobs_submit(struct ctl *ctl, uint64_t client, enum ctl_request_kind kind, json_t *req)
{
	struct ctl_jobs *js = ctl->jobs;
	struct ctl_job *job = calloc(1, sizeof(*job));
	if (!job) {
		json_decref(req);
		return -ENOMEM;
	}
	*job = (struct ctl_job){ .client = client, .kind = kind, .req = req };
	pthread_mutex_lock(&js->lock);
	if (kind == CTL_REQ_BACKUP && js->backup) {
		pthread_mutex_unlock(&js->lock);
		ctl_job_free(job);
		return -EBUSY;
	}
	if (kind == CTL_REQ_BACKUP)
		js->backup = 1;
	*js->queue_tail = job;
	js->queue_tail = &job->next;
	pthread_cond_signal(&js->more);
	pthread_mutex_unlock(&js->lock);
	return 0;
}

struct ctl_job *ctl_jobs_done(struct ctl *ctl)
{
	struct ctl_jobs *js = ctl->jobs;
	if (!js)
		return NULL;
	pthread_mutex_lock(&js->lock);
	struct ctl_job *job = js->done;
	if (job)
		js->done = job->next;
	pthread_mutex_unlock(&js->lock);
	return job;
}

void ctl_jobs_stop(struct ctl *ctl)
{
	struct ctl_jobs *js = ctl->jobs;
	if (!js)
		return;
	/* A worker waiting on a core gives up at once; exports and imports check between
	 * records; so each worker is back within one command's step. */
	ctl_mailbox_stop(&ctl->mb);
	pthread_mutex_lock(&js->lock);
	js->stop = 1;
	pthread_cond_broadcast(&js->more);
	pthread_mutex_unlock(&js->lock);
	for (unsigned i = 0; i < js->nthreads; i++)
		pthread_join(js->thread[i], NULL);
	struct ctl_job *lists[2] = { js->queue, js->done };
	for (unsigned k = 0; k < 2; k++) {
		while (lists[k]) {
			struct ctl_job *next = lists[k]->next;
			ctl_job_free(lists[k]);
			lists[k] = next;
		}
	}
	pthread_cond_destroy(&js->more);
	pthread_mutex_destroy(&js->lock);
	free(js);
	ctl->jobs = NULL;
}
