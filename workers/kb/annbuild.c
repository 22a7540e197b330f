/* annbuild.c -- phx-kb's background HNSW graph builder (see annbuild.h).
 *
 * Thread safety, as a race detector would check it:
 *  - the graph under construction (phx_kb_graph_build) belongs to this thread alone until
 *    attach; nothing else can reach it;
 *  - take reads the live index under the collection's read lock, so no writer moves slots
 *    under it (writers hold the write lock);
 *  - attach runs under sync_mu and the write lock, the same pair every other writer of
 *    phx_kb_coll.idx holds (kb.h), so readers that rely on either lock stay correct; the write
 *    lock's release then orders every store made while building the graph before any search
 *    that takes the read lock and finds idx.ann set: the hand-over needs no atomics;
 *  - phx_kb_coll structs are never freed while the process runs (a dropped one moves to the
 *    retired list), so the pointers copied out of the table stay valid; epoch tells this
 *    thread when the idx it built from was replaced meanwhile. */
#include "annbuild.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Slots copied per read-lock hold: 256 x 384 dims is 384 KB, a few tens of microseconds. */
enum { PHX_KB_ANNBUILD_BATCH = 256 };

static int phx_kb_annbuild_stopping(phx_kb_app *app)
{
    pthread_mutex_lock(&app->build_mu);
    int stop = app->build_stop;
    pthread_mutex_unlock(&app->build_mu);
    return stop;
}

/* Build c's graph and attach it. 1 when attached, 0 when there was nothing to do or the
 * build was abandoned (the copy was replaced or dropped, or the process is stopping). */
static int phx_kb_annbuild_one(phx_kb_app *app, phx_kb_coll *c)
{
    pthread_rwlock_rdlock(&c->lock);
    int due = !c->gone && phx_kb_index_graph_due(&c->idx);
    uint64_t epoch = c->epoch;
    phx_kb_graph_build b;
    if (due)
        phx_kb_graph_begin(&b, &c->idx, PHX_KB_ANNBUILD_BATCH);
    pthread_rwlock_unlock(&c->lock);
    if (!due)
        return 0;
    int64_t t0 = phx_mono_ms();
    phx_log_info("kb %s: building its HNSW graph in the background (%zu items); searches are "
                 "exact until it is attached",
                 c->name, b.end);
    int ok = 1;
    for (;;) {
        if (phx_kb_annbuild_stopping(app)) {
            ok = 0;
            break;
        }
        pthread_rwlock_rdlock(&c->lock);
        size_t m = 0;
        if (c->epoch != epoch || c->gone)
            ok = 0;
        else
            m = phx_kb_graph_take(&b, &c->idx);
        pthread_rwlock_unlock(&c->lock);
        if (!ok || m == 0)
            break;
        phx_kb_graph_add(&b);
    }
    size_t late = 0, nodes = b.n;
    if (ok) {
        pthread_mutex_lock(&c->sync_mu);
        pthread_rwlock_wrlock(&c->lock);
        if (c->epoch == epoch && !c->gone)
            late = phx_kb_graph_attach(&b, &c->idx);
        else
            ok = 0;
        pthread_rwlock_unlock(&c->lock);
        pthread_mutex_unlock(&c->sync_mu);
    }
    phx_kb_graph_free(&b);
    if (ok)
        phx_log_info("kb %s: HNSW graph attached after %lld ms (%zu nodes built in the "
                     "background, %zu items written meanwhile inserted at attach)",
                     c->name, (long long)(phx_mono_ms() - t0), nodes, late);
    else
        phx_log_info("kb %s: background graph build dropped after %lld ms (the copy was "
                     "reloaded or dropped, or the process is stopping)",
                     c->name, (long long)(phx_mono_ms() - t0));
    return ok;
}

static void *phx_kb_annbuild_main(void *appv)
{
    phx_kb_app *app = appv;
    for (;;) {
        pthread_mutex_lock(&app->build_mu);
        if (!app->build_kick && !app->build_stop) {
            struct timespec until = phx_deadline_ms(CLOCK_MONOTONIC, 1000);
            pthread_cond_timedwait(&app->build_cv, &app->build_mu, &until);
        }
        int stop = app->build_stop;
        app->build_kick = 0;
        pthread_mutex_unlock(&app->build_mu);
        if (stop)
            break;
        /* The table may change while we build: work on a copy of its pointers. */
        pthread_mutex_lock(&app->mu);
        int n = app->ncolls;
        phx_kb_coll **cs = phx_xcalloc((size_t)(n ? n : 1), sizeof(*cs));
        if (n > 0)
            memcpy(cs, app->colls, (size_t)n * sizeof(*cs));
        pthread_mutex_unlock(&app->mu);
        for (int i = 0; i < n && !phx_kb_annbuild_stopping(app); i++)
            phx_kb_annbuild_one(app, cs[i]);
        free(cs);
    }
    return NULL;
}

int phx_kb_annbuild_start(phx_kb_app *app)
{
    pthread_mutex_init(&app->build_mu, NULL);
    phx_cond_init_monotonic(&app->build_cv);
    app->build_kick = app->build_stop = 0;
    if (pthread_create(&app->builder, NULL, phx_kb_annbuild_main, app) != 0) {
        pthread_cond_destroy(&app->build_cv);
        pthread_mutex_destroy(&app->build_mu);
        return -1;
    }
    app->builder_on = 1;
    return 0;
}

void phx_kb_annbuild_kick(phx_kb_app *app)
{
    /* builder_on is written before the worker's threads start and after they end */
    if (!app->builder_on)
        return;
    pthread_mutex_lock(&app->build_mu);
    app->build_kick = 1;
    pthread_cond_signal(&app->build_cv);
    pthread_mutex_unlock(&app->build_mu);
}

void phx_kb_annbuild_stop(phx_kb_app *app)
{
    if (!app->builder_on)
        return;
    pthread_mutex_lock(&app->build_mu);
    app->build_stop = 1;
    pthread_cond_signal(&app->build_cv);
    pthread_mutex_unlock(&app->build_mu);
    pthread_join(app->builder, NULL);
    pthread_cond_destroy(&app->build_cv);
    pthread_mutex_destroy(&app->build_mu);
    app->builder_on = 0;
}
