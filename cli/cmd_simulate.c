/*
 * cmd_simulate.c - `fedl simulate`: a federated run inside one process.
 * The data set is partitioned among N simulated clients; the coordinator
 * and client state machines of fedl/fl.h run unchanged over an in-memory
 * transport on a virtual clock; the clients of a round train on a bounded
 * pool of worker threads, each worker holding one model and one training
 * session at a time, so that only active clients hold training memory.
 * They train a window of a few clients per worker at a time, and the
 * window's updates are fed to the coordinator before the next one trains:
 * memory is O(workers x model) whatever the number of clients.
 * Dropouts and stragglers are drawn from the seed. Updates reach the
 * coordinator in selection order whatever the number of workers, so the
 * same seed gives the same global model bit for bit.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "round_report.h"
#include "fedl/fedl.h"

typedef struct simulate_options {
    const char *model, *data, *partition, *strategy, *metrics, *out, *late, *ckpt_dir, *attack,
        *client_memory;
    size_t client_budget; /* bytes, from --client-memory; 0 = no limit */
    int attackers;
    float attack_scale; /* from --attack scale:F; NaN for --attack nan */
    int clients, rounds, local_epochs, batch, workers, min_clients, max_clients, train_limit,
        test_limit, quiet, retries, send_weights;
    const char *update;
    float fraction, lr, momentum, mu, drop, slow, crash, quorum, server_lr, server_tau;
    uint64_t seed, timeout_ms;
} simulate_options;

static const char simulate_usage[] =
    "Federated learning in one process: --clients simulated devices each train on\n"
    "their own part of --data (an MNIST-layout IDX directory), split by --partition\n"
    "(iid, dirichlet:ALPHA or shards:K), and a coordinator combines their updates\n"
    "with --strategy each round. --drop and --slow make that share of the selected\n"
    "clients vanish or answer after the round's deadline (seeded). Prints a table\n"
    "row per round; --metrics writes them as JSON lines; --out saves the model.\n"
    "Example:\n"
    "  fedl simulate --clients 10 --rounds 5 --model lenet5 \\\n"
    "      --data /usr/share/datasets/fashion-mnist --partition dirichlet:0.3\n";

/* ------------------------------------------------------------ the clients */

typedef struct sim_job {
    int client; /* index into the partition */
    uint64_t round;
    int slow;  /* answers after the deadline */
    int crash; /* killed in the middle of its training; restarts from disk */
    long killed_at, resumed_at, steps; /* --crash: steps before the kill, at the restart, all */
    /* results */
    fedl_status status;
    fedl_error err;
    float *delta; /* (params) a window slot, while the job is trained and fed */
    fedl_update update;
} sim_job;

typedef struct simulation {
    const simulate_options *o;
    fedl_dataset train, test;
    fedl_partition partition;
    fedl_dataset *views; /* (clients) */
    char (*ids)[FEDL_CLIENT_ID_MAX];
    size_t params;
    fedl_coordinator *coordinator;
    fedl_task task; /* the last task sent, copied from SEND_TASK */
    /* the round being played: its task, with the weights copied (the next
     * round's tasks, sent while its last updates are fed, replace task) */
    fedl_task round_task;
    float *round_weights; /* (params) */
    float *slots;         /* (window, params) the window's updates */
    int window;           /* jobs trained at a time: 4 per worker */
    fedl_model *eval_model;
    FILE *metrics;
    char ckpt_path[4096];   /* "" = no checkpoints */
    char clients_dir[4096]; /* --crash: DIR/clients, a directory per client */
    int resumed;
    uint64_t now_ms, timer_ms;
    int finished, failed;
    uint64_t start_ns;
    /* jobs: those of the tasks just sent, and those being played (the
     * next round's tasks arrive while a round's last updates are fed) */
    sim_job *jobs, *playing;
    int job_count, job_capacity, playing_capacity;
    /* worker pool: a model and an allocator each (the default allocator's
     * counters are not thread-safe) */
    fedl_model **models;        /* (workers) */
    fedl_allocator *allocators; /* (workers) */
    int workers;
    atomic_int jobs_done; /* of the round being played, for the progress bar */
    int round_jobs;       /* of the round being played */
    int progress;         /* draw it: stderr is a terminal and not --quiet */
} simulation;

/* A poisoned client (--attackers, --attack): its delta times scale (its
 * weights moved as far from the task's), or a NaN in it. */
static void poison(float *values, const float *base, size_t n, fedl_update_kind kind, float scale)
{
    if (isnan(scale)) {
        values[n / 2] = NAN;
        return;
    }
    for (size_t i = 0; i < n; i++)
        values[i] = kind == FEDL_UPDATE_WEIGHTS ? base[i] + scale * (values[i] - base[i])
                                                : scale * values[i];
}

/* The training session of a job: the task's configuration as the client
 * holds it. Round 1's client 0 shuffles as `fedl train --seed` would. */
static fedl_train_config job_config(const simulation *s, const sim_job *job,
                                    const fedl_task_config *task, const float *weights)
{
    fedl_train_config config = fedl_train_config_defaults();
    config.batch = task->batch;
    config.epochs = task->local_epochs;
    config.seed = s->o->seed + (job->round - 1) * 1000003u + (uint64_t)job->client;
    config.optim.momentum = task->momentum;
    config.lr.base_lr = task->lr;
    config.proximal_mu = task->proximal_mu;
    config.proximal_ref = weights; /* the client's copy of the task's weights */
    return config;
}

/* --client-memory: the micro-batch whose plan fits each client's budget,
 * as `fedl train --memory SIZE` picks it (the effective batch stays). */
static fedl_status plan_job(const simulation *s, const fedl_model *model, const fedl_dataset *data,
                            fedl_train_config *config, fedl_plan *plan, fedl_error *err)
{
    fedl_status st;
    if (s->o->client_budget == 0)
        return FEDL_OK;
    st = fedl_plan_training(model, data, config, s->o->client_budget, plan, err);
    if (st == FEDL_OK && !plan->fits)
        return fedl_error_set(err, FEDL_ERR_NOMEM, "--client-memory %s: %s", s->o->client_memory,
                              plan->reason);
    if (st == FEDL_OK)
        config->micro_batch = plan->micro_batch;
    return st;
}

/* Epochs the trainer has finished. */
static int epochs_done(const fedl_trainer *t)
{
    fedl_train_stats st = fedl_trainer_stats(t);
    return (int)st.epoch + (st.epoch_samples > 0 && st.position >= st.epoch_samples);
}

/* Steps until `epochs` are done, or until `stop_after` steps (-1: no
 * stop), writing the trainer's checkpoint to ckpt_path (NULL: none) every
 * `every` steps. *stopped says which. */
static fedl_status train_steps(fedl_trainer *t, fedl_model *m, fedl_allocator *alloc, int epochs,
                               long stop_after, long every, const char *ckpt_path, int *stopped,
                               fedl_error *err)
{
    fedl_status st = FEDL_OK;
    long steps = 0;
    int done;
    *stopped = 0;
    while (st == FEDL_OK && epochs_done(t) < epochs) {
        if (steps == stop_after)
            return *stopped = 1, FEDL_OK;
        st = fedl_trainer_step(t, &done, err);
        if (st == FEDL_OK && ckpt_path != NULL && ++steps % every == 0) {
            fedl_train_state state;
            fedl_container_writer *w = NULL;
            fedl_trainer_state(t, NULL, 0, &state);
            st = fedl_checkpoint_writer(m, &state, alloc, &w, err);
            if (st == FEDL_OK)
                st = fedl_container_write(w, NULL, ckpt_path, err);
            fedl_container_writer_destroy(w);
        }
    }
    return st;
}

/* A client killed in the middle of its training starts again the way a
 * device would: a new client from its saved state, the task's weights it
 * holds, a new session, the trainer's last checkpoint if one was written
 * (the steps after it are done again). */
static fedl_status restart_client(simulation *s, int w, sim_job *job, const char *dir,
                                  fedl_client **client, fedl_trainer **trainer, fedl_error *err)
{
    fedl_allocator *alloc = &s->allocators[w];
    fedl_model *model = s->models[w];
    const fedl_task_config *task;
    const float *weights;
    fedl_checkpoint *ckpt = NULL;
    fedl_train_config config;
    fedl_plan plan;
    char path[4300];
    int found = 0;
    fedl_status st;
    fedl_trainer_destroy(*trainer);
    fedl_client_destroy(*client);
    *trainer = NULL;
    *client = NULL;
    for (size_t i = 0; i < s->params; i++) /* nothing survives in memory */
        fedl_model_params(model)[i] = NAN;
    st = fedl_client_create(s->ids[job->client], s->params, alloc, client, err);
    snprintf(path, sizeof path, "%s/client.fedl", dir);
    if (st == FEDL_OK)
        st = fedl_client_load_file(*client, path, &found, err);
    if (st == FEDL_OK && !found)
        st = fedl_error_set(err, FEDL_ERR_IO, "%s: gone", path);
    if (st == FEDL_OK && (task = fedl_client_pending(*client, &weights)) == NULL)
        st = fedl_error_set(err, FEDL_ERR_STATE, "%s: no task pending", path);
    if (st != FEDL_OK)
        return st;
    memcpy(fedl_model_params(model), weights, s->params * sizeof(float));
    config = job_config(s, job, task, weights);
    st = plan_job(s, model, &s->views[job->client], &config, &plan, err);
    if (st == FEDL_OK)
        st = fedl_trainer_create(model, &s->views[job->client], &config, alloc, trainer, err);
    snprintf(path, sizeof path, "%s/train.fedl", dir);
    if (st == FEDL_OK && access(path, F_OK) == 0) {
        st = fedl_checkpoint_load(path, alloc, &ckpt, err);
        if (st == FEDL_OK)
            st = fedl_trainer_restore(*trainer, ckpt, err);
        fedl_checkpoint_free(ckpt);
    }
    return st;
}

/* Local training of one job on worker w: the task's weights into the
 * worker's model, a training session on the client's data, the update.
 * A --crash job keeps its state in DIR/clients/<id>/ (client.fedl when it
 * accepts, train.fedl every third of its steps), is killed half way and
 * restarts from those files. */
static void run_job(simulation *s, int w, sim_job *job)
{
    const simulate_options *o = s->o;
    fedl_model *model = s->models[w];
    fedl_train_config config;
    fedl_plan plan;
    fedl_trainer *trainer = NULL;
    fedl_client *client = NULL;
    fedl_train_stats stats;
    fedl_error *err = &job->err;
    fedl_allocator *alloc = &s->allocators[w];
    const fedl_dataset *data = &s->views[job->client];
    long total = 0, every = 0, crash_at = -1;
    char dir[4200], ckpt_path[4300];
    int stopped = 0;
    job->status = fedl_client_create(s->ids[job->client], s->params, alloc, &client, err);
    if (job->status == FEDL_OK)
        fedl_client_send_weights(client, o->send_weights);
    if (job->status == FEDL_OK)
        job->status = fedl_client_accept_task(client, &s->round_task, err);
    if (job->status == FEDL_OK && job->crash) {
        snprintf(dir, sizeof dir, "%s/%s", s->clients_dir, s->ids[job->client]);
        snprintf(ckpt_path, sizeof ckpt_path, "%s/train.fedl", dir);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            job->status = fedl_error_set(err, FEDL_ERR_IO, "%s: %s", dir, strerror(errno));
        else if (unlink(ckpt_path) != 0 && errno != ENOENT) /* a new task: a new session */
            job->status = fedl_error_set(err, FEDL_ERR_IO, "%s: %s", ckpt_path, strerror(errno));
        snprintf(ckpt_path, sizeof ckpt_path, "%s/client.fedl", dir);
        if (job->status == FEDL_OK)
            job->status = fedl_client_save_file(client, alloc, ckpt_path, err);
        snprintf(ckpt_path, sizeof ckpt_path, "%s/train.fedl", dir);
        total = (long)s->round_task.config.local_epochs *
                (long)((data->count + (size_t)s->round_task.config.batch - 1) /
                       (size_t)s->round_task.config.batch);
        every = total / 3 > 0 ? total / 3 : 1;
        crash_at = total / 2;
    }
    if (job->status != FEDL_OK)
        goto out;
    memcpy(fedl_model_params(model), s->round_task.weights, s->params * sizeof(float));
    config = job_config(s, job, &s->round_task.config, s->round_task.weights);
    job->status = plan_job(s, model, data, &config, &plan, err);
    if (job->status == FEDL_OK)
        job->status = fedl_trainer_create(model, data, &config, alloc, &trainer, err);
    if (job->status == FEDL_OK)
        job->status = train_steps(trainer, model, alloc, config.epochs, crash_at, every,
                                  job->crash ? ckpt_path : NULL, &stopped, err);
    if (job->status == FEDL_OK && stopped) {
        job->killed_at = crash_at;
        job->steps = total;
        job->status = restart_client(s, w, job, dir, &client, &trainer, err);
        if (job->status == FEDL_OK) {
            job->resumed_at = (long)fedl_trainer_stats(trainer).global_step;
            job->status = train_steps(trainer, model, alloc, config.epochs, -1, every, ckpt_path,
                                      &stopped, err);
        }
    }
    if (job->status != FEDL_OK)
        goto out;
    stats = fedl_trainer_stats(trainer);
    {
        fedl_telemetry t = {0, 0.0, data->count, 0};
        fedl_update u;
        job->status =
            fedl_client_make_update(client, fedl_model_params(model), stats.samples_seen,
                                    stats.loss_sum / (double)stats.epoch_seen, &t, &u, err);
        if (job->status == FEDL_OK) {
            memcpy(job->delta, u.values, s->params * sizeof(float));
            job->update = u;
            job->update.values = job->delta;
            if (job->client < o->attackers)
                poison(job->delta, s->round_task.weights, s->params, u.kind, o->attack_scale);
        }
        if (job->status == FEDL_OK && job->crash) { /* delivered: the round is done here */
            snprintf(ckpt_path, sizeof ckpt_path, "%s/client.fedl", dir);
            job->status = fedl_client_save_file(client, alloc, ckpt_path, err);
            snprintf(ckpt_path, sizeof ckpt_path, "%s/train.fedl", dir);
            if (job->status == FEDL_OK && unlink(ckpt_path) != 0 && errno != ENOENT)
                job->status =
                    fedl_error_set(err, FEDL_ERR_IO, "%s: %s", ckpt_path, strerror(errno));
        }
    }
out:
    fedl_trainer_destroy(trainer);
    fedl_client_destroy(client);
}

typedef struct worker_arg {
    simulation *s;
    int w;
    sim_job *first;
    int count, stride;
} worker_arg;

/* "round 3 [#########...........] 6/14 clients trained" on the terminal. */
static void draw_progress(simulation *s, int total)
{
    char bar[21];
    int done = atomic_load(&s->jobs_done), filled = total > 0 ? done * 20 / total : 20;
    for (int i = 0; i < 20; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[20] = '\0';
    fprintf(stderr, "\rround %llu [%s] %d/%d clients trained ",
            (unsigned long long)s->round_task.round, bar, done, total);
    fflush(stderr);
}

static void *worker_main(void *arg)
{
    worker_arg *a = arg;
    for (int i = a->w; i < a->count; i += a->stride) {
        run_job(a->s, a->w, &a->first[i]);
        atomic_fetch_add(&a->s->jobs_done, 1);
        if (a->w == 0 && a->s->progress) /* the calling thread draws */
            draw_progress(a->s, a->s->round_jobs);
    }
    return NULL;
}

/* Run jobs [0, n) on the pool; the calling thread is worker 0. */
static void run_jobs(simulation *s, sim_job *jobs, int n)
{
    pthread_t threads[64];
    worker_arg args[64];
    int started = 0, workers = s->workers < n ? s->workers : n;
    for (int w = 0; w < workers; w++)
        args[w] = (worker_arg){s, w, jobs, n, workers};
    for (int w = 1; w < workers; w++)
        if (pthread_create(&threads[w], NULL, worker_main, &args[w]) == 0)
            started = w;
        else
            break;
    if (started < workers - 1) /* a thread could not start: the caller does all */
        for (int w = started + 1; w < workers; w++)
            for (int i = w; i < n; i += workers)
                run_job(s, 0, &jobs[i]);
    worker_main(&args[0]);
    for (int w = 1; w <= started; w++)
        pthread_join(threads[w], NULL);
}

/* ------------------------------------------------------------- the loop */

static int handle_actions(simulation *s);

/* A draw in [0, 1) from (seed, round, client, what). */
static double draw(uint64_t seed, uint64_t round, int client, int what)
{
    fedl_rng rng;
    fedl_rng_init(&rng, seed ^ 0x5eed5eed5eedull,
                  (round << 24) ^ ((uint64_t)client << 2) ^ (uint64_t)what);
    return (double)fedl_rng_uniform(&rng);
}

static int add_job(simulation *s, const char *client_id)
{
    int client = atoi(client_id + 7); /* "client-NNNN" */
    sim_job *job;
    if (s->job_count == s->job_capacity) {
        int grown = s->job_capacity ? s->job_capacity * 2 : 16;
        sim_job *jobs = realloc(s->jobs, (size_t)grown * sizeof *jobs);
        if (jobs == NULL)
            return -1;
        memset(jobs + s->job_capacity, 0, (size_t)(grown - s->job_capacity) * sizeof *jobs);
        s->jobs = jobs;
        s->job_capacity = grown;
    }
    job = &s->jobs[s->job_count];
    job->client = client;
    job->round = s->task.round;
    job->slow = draw(s->o->seed, job->round, client, 1) < s->o->slow;
    job->crash = draw(s->o->seed, job->round, client, 2) < s->o->crash;
    job->killed_at = -1;
    if (draw(s->o->seed, job->round, client, 0) < s->o->drop)
        return 0; /* this client vanishes: no job */
    s->job_count++;
    return 0;
}

static int feed(simulation *s, sim_job *job)
{
    fedl_error err = {0};
    if (job->killed_at >= 0 && !s->o->quiet)
        printf("       %s killed after %ld of %ld steps, restarted from its files at step %ld\n",
               s->ids[job->client], job->killed_at, job->steps, job->resumed_at);
    if (job->status != FEDL_OK) {
        fprintf(stderr, "fedl simulate: %s: %s (no update sent)\n", s->ids[job->client],
                job->err.message);
        return 0;
    }
    s->now_ms++;
    if (fedl_coordinator_update(s->coordinator, &job->update, s->now_ms, &err) != FEDL_OK) {
        fprintf(stderr, "fedl simulate: coordinator: %s\n", err.message);
        return 1;
    }
    return handle_actions(s);
}

/* Train jobs [0, n) a window at a time, feeding each window's updates in
 * order before the next trains. */
static int play_window(simulation *s, sim_job *jobs, int n)
{
    int rc = 0;
    for (int first = 0; first < n && rc == 0; first += s->window) {
        int count = n - first < s->window ? n - first : s->window;
        for (int i = 0; i < count; i++)
            jobs[first + i].delta = s->slots + (size_t)i * s->params;
        run_jobs(s, jobs + first, count);
        for (int i = 0; i < count && rc == 0 && !s->finished && !s->failed; i++)
            rc = feed(s, &jobs[first + i]);
    }
    return rc;
}

/* The round's tasks went out: train and deliver the punctual updates in
 * selection order, let the deadline pass, then train and deliver the
 * stragglers. A job's result depends on its task alone, so training the
 * stragglers later changes nothing but the memory held. */
static int play_round(simulation *s)
{
    int n = s->job_count, rc = 0, capacity = s->job_capacity, punctual = 0;
    uint64_t round = s->task.round;
    fedl_error err = {0};
    sim_job *jobs = s->jobs;
    /* the jobs to play; new tasks fill the other array */
    s->jobs = s->playing;
    s->job_capacity = s->playing_capacity;
    s->playing = jobs;
    s->playing_capacity = capacity;
    s->job_count = 0;
    s->round_task = s->task;
    memcpy(s->round_weights, s->task.weights, s->params * sizeof(float));
    s->round_task.weights = s->round_weights;
    /* punctual jobs first, stragglers after, each in selection order */
    for (int i = 0; i < n; i++)
        punctual += !jobs[i].slow;
    if (punctual < n) {
        sim_job *sorted = malloc((size_t)n * sizeof *sorted);
        int p = 0, q = punctual;
        if (sorted == NULL)
            return fprintf(stderr, "fedl simulate: out of memory\n"), 1;
        for (int i = 0; i < n; i++)
            sorted[jobs[i].slow ? q++ : p++] = jobs[i];
        memcpy(jobs, sorted, (size_t)n * sizeof *sorted);
        free(sorted);
    }
    atomic_store(&s->jobs_done, 0);
    s->round_jobs = n;
    rc = play_window(s, jobs, punctual);
    if (rc == 0 && !s->finished && !s->failed && fedl_coordinator_round_open(s->coordinator) &&
        s->task.round == round) {
        s->now_ms = s->timer_ms;
        if (fedl_coordinator_timer(s->coordinator, s->now_ms, &err) != FEDL_OK)
            return fprintf(stderr, "fedl simulate: %s\n", err.message), 1;
        rc = handle_actions(s);
    }
    if (rc == 0 && !s->finished && !s->failed)
        rc = play_window(s, jobs + punctual, n - punctual);
    if (s->progress)
        fprintf(stderr, "\r%60s\r", "");
    return rc;
}

static void report_round(simulation *s, const fedl_round_metrics *m)
{
    round_report("simulate", m, s->eval_model, fedl_coordinator_weights(s->coordinator, NULL),
                 &s->test, s->o->quiet, s->metrics, (double)(fedl_time_ns() - s->start_ns) / 1e9);
}

/* The coordinator between rounds, written atomically (temp file, fsync,
 * rename) in a container with a CRC. */
static int persist(simulation *s)
{
    fedl_error err = {0};
    if (s->ckpt_path[0] == '\0')
        return 0;
    if (fedl_coordinator_save_file(s->coordinator, s->ckpt_path, &err) != FEDL_OK) {
        fprintf(stderr, "fedl simulate: checkpoint %s: %s\n", s->ckpt_path, err.message);
        return 1;
    }
    return 0;
}

/* Carry out the coordinator's actions; tasks become jobs for play_round. */
static int handle_actions(simulation *s)
{
    const fedl_fl_action *a;
    size_t n = fedl_coordinator_actions(s->coordinator, &a);
    for (size_t i = 0; i < n; i++) {
        switch (a[i].kind) {
        case FEDL_FL_SEND_TASK:
            s->task = *a[i].task;
            if (add_job(s, a[i].client_id) != 0)
                return fprintf(stderr, "fedl simulate: out of memory\n"), 1;
            break;
        case FEDL_FL_SET_TIMER:
            s->timer_ms = a[i].time_ms;
            break;
        case FEDL_FL_ROUND_DONE:
            report_round(s, a[i].metrics);
            break;
        case FEDL_FL_REJECT:
            fedl_log(FEDL_LOG_INFO, "update of %s refused: %s", a[i].client_id, a[i].reason);
            break;
        case FEDL_FL_PERSIST:
            if (persist(s) != 0)
                return 1;
            break;
        case FEDL_FL_FINISHED:
            s->finished = 1;
            break;
        case FEDL_FL_FAILED:
            fprintf(stderr, "fedl simulate: the run failed: %s\n", a[i].reason);
            s->failed = 1;
            break;
        }
    }
    return 0;
}

static int run(simulation *s)
{
    fedl_error err = {0};
    int rc = 0;
    if (fedl_coordinator_start(s->coordinator, s->now_ms, &err) != FEDL_OK)
        return fprintf(stderr, "fedl simulate: %s\n", err.message), 1;
    rc = handle_actions(s);
    while (rc == 0 && !s->finished && !s->failed) {
        if (s->job_count > 0) {
            rc = play_round(s);
            continue;
        }
        /* nothing to train: let the timer fire (a round waiting or open) */
        s->now_ms = s->timer_ms > s->now_ms ? s->timer_ms : s->now_ms + 1;
        if (fedl_coordinator_timer(s->coordinator, s->now_ms, &err) != FEDL_OK)
            return fprintf(stderr, "fedl simulate: %s\n", err.message), 1;
        rc = handle_actions(s);
    }
    return rc != 0 || s->failed;
}

/* --client-memory: the plan of the client with the most samples. */
static int report_client_plan(const simulation *s)
{
    int largest = 0;
    sim_job job = {0};
    fedl_task_config task;
    fedl_train_config config;
    fedl_plan plan;
    fedl_error err = {0};
    for (int i = 1; i < s->o->clients; i++)
        if (s->views[i].count > s->views[largest].count)
            largest = i;
    job.client = largest;
    job.round = 1;
    task = (fedl_task_config){s->o->local_epochs, s->o->batch, s->o->lr, s->o->momentum, s->o->mu};
    config = job_config(s, &job, &task, NULL);
    if (plan_job(s, s->models[0], &s->views[largest], &config, &plan, &err) != FEDL_OK)
        return fprintf(stderr, "fedl simulate: %s (%s, %zu samples)\n", err.message,
                       s->ids[largest], s->views[largest].count),
               1;
    printf("clients' memory plan (--client-memory %s; %s, %zu samples): micro-batch %d of "
           "batch %d\n",
           s->o->client_memory, s->ids[largest], s->views[largest].count, plan.micro_batch,
           plan.batch);
    return 0;
}

/* -------------------------------------------------------------- setup */

/* --ckpt-dir: continue from DIR/coordinator.fedl when it is there (the
 * clients are in it), else start afresh there. */
static int resume(simulation *s, const char *dir)
{
    fedl_error err = {0};
    uint64_t version;
    int found = 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fprintf(stderr, "fedl simulate: --ckpt-dir %s: %s\n", dir, strerror(errno)), 1;
    snprintf(s->ckpt_path, sizeof s->ckpt_path, "%s/coordinator.fedl", dir);
    snprintf(s->clients_dir, sizeof s->clients_dir, "%s/clients", dir);
    if (s->o->crash > 0.0f && mkdir(s->clients_dir, 0755) != 0 && errno != EEXIST)
        return fprintf(stderr, "fedl simulate: %s: %s\n", s->clients_dir, strerror(errno)), 1;
    if (fedl_coordinator_load_file(s->coordinator, s->ckpt_path, &found, &err) != FEDL_OK) {
        fprintf(stderr, "fedl simulate: cannot resume from %s: %s\n", s->ckpt_path, err.message);
        return 1;
    }
    if (!found)
        return 0;
    fedl_coordinator_weights(s->coordinator, &version);
    printf("resumed from %s: %llu rounds done, %d clients\n", s->ckpt_path,
           (unsigned long long)version, fedl_coordinator_client_count(s->coordinator));
    s->resumed = 1;
    return 0;
}

static int setup(simulation *s, const simulate_options *o)
{
    fedl_partition_spec spec;
    fedl_coordinator_config c = fedl_coordinator_defaults();
    fedl_strategy_kind kind;
    fedl_model *global = NULL;
    fedl_error err = {0};
    if (fedl_partition_parse(o->partition, &spec, &err) != FEDL_OK ||
        fedl_strategy_parse(o->strategy, &kind, &err) != FEDL_OK)
        return fprintf(stderr, "fedl simulate: %s\n", err.message), 2;
    if (fedl_dataset_load_mnist_dir(o->data, FEDL_SPLIT_TRAIN, NULL, &s->train, &err) != FEDL_OK ||
        fedl_dataset_load_mnist_dir(o->data, FEDL_SPLIT_TEST, NULL, &s->test, &err) != FEDL_OK)
        return fprintf(stderr, "fedl simulate: --data %s: %s\n", o->data, err.message), 1;
    if (o->train_limit > 0 && (size_t)o->train_limit < s->train.count)
        fedl_dataset_truncate(&s->train, (size_t)o->train_limit);
    if (o->test_limit > 0 && (size_t)o->test_limit < s->test.count)
        fedl_dataset_truncate(&s->test, (size_t)o->test_limit);
    if (fedl_partition_make(&s->train, o->clients, &spec, o->seed, NULL, &s->partition, &err) !=
        FEDL_OK)
        return fprintf(stderr, "fedl simulate: --partition %s: %s\n", o->partition, err.message), 1;
    s->views = calloc((size_t)o->clients, sizeof *s->views);
    s->ids = calloc((size_t)o->clients, sizeof *s->ids);
    s->models = calloc((size_t)s->workers, sizeof *s->models);
    s->allocators = calloc((size_t)s->workers, sizeof *s->allocators);
    if (s->views == NULL || s->ids == NULL || s->models == NULL || s->allocators == NULL)
        return fprintf(stderr, "fedl simulate: out of memory\n"), 1;
    for (int w = 0; w < s->workers; w++)
        fedl_allocator_init(&s->allocators[w], fedl_alloc_malloc, NULL);
    for (int i = 0; i < o->clients; i++) {
        snprintf(s->ids[i], sizeof s->ids[i], "client-%04d", i);
        if (fedl_partition_subset(&s->train, &s->partition, i, NULL, &s->views[i], &err) != FEDL_OK)
            return fprintf(stderr, "fedl simulate: client %d: %s\n", i, err.message), 1;
    }
    if (fedl_model_create(o->model, s->train.shape, o->seed, NULL, &global, &err) != FEDL_OK)
        return fprintf(stderr, "fedl simulate: --model: %s\n", err.message), 2;
    s->params = fedl_model_param_count(global);
    s->window = 4 * s->workers;
    s->round_weights = malloc(s->params * sizeof(float));
    s->slots = malloc((size_t)s->window * s->params * sizeof(float));
    if (s->round_weights == NULL || s->slots == NULL) {
        fedl_model_destroy(global);
        return fprintf(stderr, "fedl simulate: out of memory\n"), 1;
    }
    for (int w = 0; w < s->workers; w++)
        if (fedl_model_create(o->model, s->train.shape, o->seed, &s->allocators[w], &s->models[w],
                              &err) != FEDL_OK) {
            fedl_model_destroy(global);
            return fprintf(stderr, "fedl simulate: model: %s\n", err.message), 1;
        }
    c.rounds = o->rounds;
    c.fraction = o->fraction;
    c.min_clients = o->min_clients > 0 ? o->min_clients : (o->clients < 2 ? 1 : 2);
    c.max_clients = o->max_clients;
    c.quorum = o->quorum;
    c.round_timeout_ms = o->timeout_ms;
    c.max_retries = o->retries;
    c.seed = o->seed;
    c.late = strcmp(o->late, "fold") == 0 ? FEDL_LATE_FOLD : FEDL_LATE_REJECT;
    c.task.local_epochs = o->local_epochs;
    c.task.batch = o->batch;
    c.task.lr = o->lr;
    c.task.momentum = o->momentum;
    c.task.proximal_mu = o->mu;
    c.strategy = fedl_strategy_defaults(kind);
    if (o->server_lr > 0.0f)
        c.strategy.server_lr = o->server_lr;
    if (o->server_tau > 0.0f)
        c.strategy.tau = o->server_tau;
    s->eval_model = global;
    if (fedl_coordinator_create(&c, fedl_model_params(global), s->params, NULL, &s->coordinator,
                                &err) != FEDL_OK)
        return fprintf(stderr, "fedl simulate: %s\n", err.message), 2;
    if (o->ckpt_dir != NULL) {
        int rc = resume(s, o->ckpt_dir);
        if (rc != 0 || s->resumed)
            return rc;
    }
    for (int i = 0; i < o->clients; i++) {
        fedl_telemetry t = {0, 0.0, s->views[i].count, 0};
        if (fedl_coordinator_register(s->coordinator, s->ids[i], &t, 0, &err) != FEDL_OK)
            return fprintf(stderr, "fedl simulate: %s\n", err.message), 1;
    }
    return 0;
}

static void teardown(simulation *s)
{
    for (int i = 0; s->views != NULL && i < s->o->clients; i++)
        fedl_dataset_free(&s->views[i]);
    for (int w = 0; s->models != NULL && w < s->workers; w++)
        fedl_model_destroy(s->models[w]);
    free(s->round_weights);
    free(s->slots);
    free(s->jobs);
    free(s->playing);
    free(s->allocators);
    free(s->views);
    free(s->ids);
    free(s->models);
    fedl_model_destroy(s->eval_model);
    fedl_coordinator_destroy(s->coordinator);
    fedl_partition_free(&s->partition);
    fedl_dataset_free(&s->train);
    fedl_dataset_free(&s->test);
    if (s->metrics != NULL)
        fclose(s->metrics);
}

int cmd_simulate(int argc, char **argv)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    simulate_options o = {.model = "lenet5",
                          .partition = "iid",
                          .strategy = "fedavg",
                          .late = "reject",
                          .clients = 10,
                          .rounds = 5,
                          .local_epochs = 1,
                          .batch = 32,
                          .workers = cpus > 0 ? (int)(cpus < 64 ? cpus : 64) : 1,
                          .fraction = 1.0f,
                          .lr = 0.05f,
                          .quorum = 1.0f,
                          .retries = 3,
                          .seed = 1,
                          .timeout_ms = 60000};
    const cli_option options[] = {
        {"clients", CLI_INT, &o.clients, "N", "simulated clients [10]", 1, 1000000},
        {"rounds", CLI_INT, &o.rounds, "N", "federated rounds [5]", 1, 1000000},
        {"model", CLI_STRING, &o.model, "NAME|SPEC", "preset (lenet5, mlp) or spec [lenet5]", 0, 0},
        {"data", CLI_STRING, &o.data, "DIR", "MNIST-layout IDX directory, required", 0, 0},
        {"partition", CLI_STRING, &o.partition, "HOW", "iid, dirichlet:ALPHA or shards:K [iid]", 0,
         0},
        {"fraction", CLI_FLOAT, &o.fraction, "F", "share of the clients selected a round [1]",
         0.000001, 1},
        {"min-clients", CLI_INT, &o.min_clients, "N", "fewest clients a round needs [2]", 1,
         1000000},
        {"max-clients", CLI_INT, &o.max_clients, "N", "most clients a round takes [no cap]", 1,
         1000000},
        {"quorum", CLI_FLOAT, &o.quorum, "F", "share of the selected that closes a round [1]",
         0.000001, 1},
        {"local-epochs", CLI_INT, &o.local_epochs, "N", "epochs of local training [1]", 1, 10000},
        {"batch", CLI_INT, &o.batch, "N", "local batch [32]", 1, 1 << 20},
        {"lr", CLI_FLOAT, &o.lr, "F", "local learning rate [0.05]", 0, 1e6},
        {"momentum", CLI_FLOAT, &o.momentum, "F", "local SGD momentum [0]", 0, 0.999999},
        {"mu", CLI_FLOAT, &o.mu, "F", "FedProx proximal term (sent with tasks) [0]", 0, 1e6},
        {"strategy", CLI_STRING, &o.strategy, "NAME",
         "fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, median, trimmed-mean, krum, "
         "multi-krum [fedavg]",
         0, 0},
        {"server-lr", CLI_FLOAT, &o.server_lr, "F", "server learning rate [the strategy's]", 0,
         1e6},
        {"server-tau", CLI_FLOAT, &o.server_tau, "F",
         "adaptive strategies' tau (their step is m / (sqrt(v) + tau)) [the strategy's]", 0, 1e6},
        {"drop", CLI_FLOAT, &o.drop, "P", "share of selected clients that never answer [0]", 0, 1},
        {"slow", CLI_FLOAT, &o.slow, "P", "share that answer after the deadline [0]", 0, 1},
        {"client-memory", CLI_STRING, &o.client_memory, "SIZE",
         "each client's training fits SIZE (its micro-batch is planned) [no limit]", 0, 0},
        {"crash", CLI_FLOAT, &o.crash, "P",
         "share killed half way through training, restarting from their state in "
         "--ckpt-dir [0]",
         0, 1},
        {"late", CLI_STRING, &o.late, "HOW", "late updates: reject or fold [reject]", 0, 0},
        {"attackers", CLI_INT, &o.attackers, "K", "the first K clients are poisoned (--attack) [0]",
         0, 1000000},
        {"attack", CLI_STRING, &o.attack, "HOW",
         "what they send: scale:F (their delta times F) or nan [scale:-10]", 0, 0},
        {"update", CLI_STRING, &o.update, "WHAT",
         "clients send their delta or their weights (exact) [delta]", 0, 0},
        {"timeout-ms", CLI_U64, &o.timeout_ms, "MS", "round deadline, virtual time [60000]", 1, 0},
        {"retries", CLI_INT, &o.retries, "N", "attempts of a round with too few updates [3]", 0,
         1000},
        {"workers", CLI_INT, &o.workers, "N", "training threads [CPUs]", 1, 64},
        {"seed", CLI_U64, &o.seed, "N", "weights, partition, selection, dropouts [1]", 0, 0},
        {"train-limit", CLI_INT, &o.train_limit, "N", "use the first N training samples", 1,
         2147483647},
        {"test-limit", CLI_INT, &o.test_limit, "N", "use the first N test samples", 1, 2147483647},
        {"metrics", CLI_STRING, &o.metrics, "FILE", "per-round metrics as JSON lines", 0, 0},
        {"ckpt-dir", CLI_STRING, &o.ckpt_dir, "DIR",
         "checkpoint the coordinator after every round; resume from it", 0, 0},
        {"out", CLI_STRING, &o.out, "FILE", "write the final global model here", 0, 0},
        {"quiet", CLI_FLAG, &o.quiet, NULL, "no table", 0, 0},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0}};
    simulation s;
    fedl_error err = {0};
    int rc = cli_parse("simulate", simulate_usage, options, argc, argv, 2);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (o.data == NULL) {
        fprintf(stderr, "fedl simulate: --data DIR is required (see 'fedl simulate --help')\n");
        return 2;
    }
    if (o.update != NULL && strcmp(o.update, "delta") != 0 && strcmp(o.update, "weights") != 0) {
        fprintf(stderr, "fedl simulate: --update: 'delta' or 'weights' (got '%s')\n", o.update);
        return 2;
    }
    o.send_weights = o.update != NULL && strcmp(o.update, "weights") == 0;
    o.attack_scale = -10.0f;
    if (o.attack != NULL && strcmp(o.attack, "nan") == 0) {
        o.attack_scale = NAN;
    } else if (o.attack != NULL) {
        char *end;
        if (strncmp(o.attack, "scale:", 6) != 0 ||
            !isfinite(o.attack_scale = strtof(o.attack + 6, &end)) || *end != '\0' ||
            end == o.attack + 6) {
            fprintf(stderr, "fedl simulate: --attack: scale:F or nan (got '%s')\n", o.attack);
            return 2;
        }
    }
    if (o.client_memory != NULL &&
        (fedl_parse_size(o.client_memory, &o.client_budget, &err) != FEDL_OK ||
         o.client_budget == 0)) {
        fprintf(stderr, "fedl simulate: --client-memory: a size such as 16M (got '%s')\n",
                o.client_memory);
        return 2;
    }
    if (o.crash > 0.0f && o.ckpt_dir == NULL) {
        fprintf(stderr, "fedl simulate: --crash needs --ckpt-dir DIR (the clients keep their "
                        "state in DIR/clients)\n");
        return 2;
    }
    if (strcmp(o.late, "reject") != 0 && strcmp(o.late, "fold") != 0) {
        fprintf(stderr, "fedl simulate: --late: 'reject' or 'fold' (got '%s')\n", o.late);
        return 2;
    }
    memset(&s, 0, sizeof s);
    s.o = &o;
    s.workers = o.workers;
    s.start_ns = fedl_time_ns();
    s.progress = !o.quiet && isatty(STDERR_FILENO);
    /* The workers are the parallelism; and the BLAS's thread count changes
     * low bits, so it is 1 whatever --workers is: the same seed gives the
     * same model with any number of workers. */
    fedl_blas_threads(1);
    rc = setup(&s, &o);
    if (rc == 0 && o.metrics != NULL &&
        (s.metrics = fopen(o.metrics, s.resumed ? "a" : "w")) == NULL) {
        fprintf(stderr, "fedl simulate: --metrics %s: cannot open\n", o.metrics);
        rc = 1;
    }
    if (rc == 0) {
        printf("simulate: %d clients (%s), %s, %d rounds, fraction %g, %zu parameters, %d "
               "workers, seed %llu\n",
               o.clients, o.partition, o.strategy, o.rounds, (double)o.fraction, s.params,
               s.workers, (unsigned long long)o.seed);
        if (o.client_budget > 0)
            rc = report_client_plan(&s);
    }
    if (rc == 0) {
        if (!o.quiet)
            round_report_header();
        fflush(stdout);
        rc = run(&s);
    }
    if (rc == 0 && o.out != NULL)
        rc = round_report_save("simulate", s.eval_model,
                               fedl_coordinator_weights(s.coordinator, NULL), o.out);
    if (rc == 0)
        printf("summary: %d rounds in %.1f s; peak RSS %.1f MiB\n", o.rounds,
               (double)(fedl_time_ns() - s.start_ns) / 1e9,
               (double)cli_peak_rss_bytes() / (1024.0 * 1024.0));
    teardown(&s);
    return rc;
}
