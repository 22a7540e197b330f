/* kb.h -- what the phx-kb modules share: the process state, a collection's in-memory state and
 * the per-thread state.
 *
 * Redis is the source of truth (kbrec.h has the key layout). Each replica keeps every
 * collection it has been asked about in memory (index.h) and keeps it current from the
 * collection's change log (store.h): before a search it catches up with the log, so a search
 * sees every write acknowledged before it started, on any replica. */
#ifndef PHX_KB_H
#define PHX_KB_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>

#include "../llm/llm.h"
#include "index.h"
#include "redis.h"

/* How texts without a vector are embedded (PHX_KB_EMBEDDER). */
enum phx_kb_embedder { PHX_KB_EMBED_NONE = 0, PHX_KB_EMBED_LEXICAL = 1, PHX_KB_EMBED_LLM = 2 };

typedef struct phx_kb_coll {
    char name[65];
    char gen[40]; /* the collection's creation id: a re-created collection is a new one */
    int dim, metric, policy;
    long capacity, ttl_s;
    /* Every writer of idx holds both: sync_mu, then lock for writing. So a thread holding
     * either one may read idx; searches hold lock for reading. */
    pthread_mutex_t sync_mu; /* one catch-up with the log (or graph attach) at a time */
    pthread_rwlock_t lock;   /* guards idx: searches read, catch-ups write */
    phx_kb_index idx;
    uint64_t epoch;     /* +1 whenever idx is replaced (a reload) or discarded (under both locks):
                         * a graph built from an older idx must not be attached to this one */
    char last_id[48];   /* the last log entry applied */
    long long last_seq; /* its sequence number (a gap means the log was trimmed past us) */
    phx_kb_ann_cfg ann; /* when this collection gets an HNSW graph */
    int loaded;
    int gone; /* dropped or re-created in Redis: this copy serves nothing */
} phx_kb_coll;

typedef struct phx_kb_app {
    const struct phx_common *common;
    long max_items, max_text, max_meta, max_k, log_maxlen, prune_interval_ms, max_ttl_s;
    int embedder, embed_dim;
    phx_llm_chain llm;     /* PHX_KB_EMBEDDER=llm: the LLM pool's providers (PHX_LLM_*) */
    long llm_daily_tokens; /* PHX_LLM_TENANT_DAILY_TOKENS, as phx-llm charges it */
    phx_kb_ann_cfg ann;    /* metric filled per collection */
    long hnsw_ef;          /* default search beam */
    long int8_rerank;      /* exact scans over an int8 copy, k * this re-ranked (0 = off) */
    char worker[128];      /* host:pid, the owner of pruning leases */
    pthread_mutex_t mu;    /* guards the collection table (not the collections) */
    phx_kb_coll **colls;
    int ncolls, capcolls;
    phx_kb_coll **retired; /* dropped while in use; freed at exit */
    int nretired, capretired;
    /* The start-up load (/readyz): not ready until every collection listed in Redis when the
     * first catch-up began is in memory. Written by the tick thread, read by the admin and
     * main threads: boot_mu guards all four. */
    pthread_mutex_t boot_mu;
    int booted; /* the first phx_kb_sync_all finished without error */
    int boot_done, boot_total;
    char boot_coll[65]; /* the collection loading now */
    /* The background graph builder (annbuild.h): build_mu guards the two flags. */
    pthread_t builder;
    int builder_on;
    pthread_mutex_t build_mu;
    pthread_cond_t build_cv;
    int build_kick, build_stop;
} phx_kb_app;

typedef struct phx_kb_thread {
    phx_kb_app *app;
    phx_redis *r;
    CURL *curl;            /* PHX_KB_EMBEDDER=llm only */
    phx_llm_ctx task;      /* the task being run: tenant and job to charge, deadline */
    int64_t next_prune_ms; /* tick thread only */
} phx_kb_thread;

#endif
