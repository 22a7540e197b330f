/* annbuild.h -- phx-kb's background graph builder: HNSW graphs are built off to the side of the
 * live copies, so a worker is ready (and serves exact searches) as soon as the vectors are
 * loaded, and switches a collection to its graph once the graph exists.
 *
 * One thread per process builds one graph at a time (a build is CPU-bound); each batch's
 * inserts are shared by PHX_KB_HNSW_BUILD_THREADS threads (phx_kb_hnsw_add_many), started for
 * the batch and joined before the next take. It wakes on phx_kb_annbuild_kick (a catch-up found a
 * collection whose index wants a graph: phx_kb_index_graph_due) and once a second regardless, and
 * builds with index.h's take / add / attach phases (read lock per batch of 256, no lock for the
 * inserts, sync_mu and the write lock to attach). A collection re-loaded or dropped meanwhile
 * (phx_kb_coll.epoch moved) makes it drop the graph and look again. */
#ifndef PHX_KB_ANNBUILD_H
#define PHX_KB_ANNBUILD_H

#include "kb.h"

/* Start the builder thread for app; 0, or -1 when the thread could not be made. */
int phx_kb_annbuild_start(phx_kb_app *app);
/* Ask it to look now (any thread; cheap). A no-op when it is not running. */
void phx_kb_annbuild_kick(phx_kb_app *app);
/* Stop it (a build in progress ends at its next batch) and join it. */
void phx_kb_annbuild_stop(phx_kb_app *app);

#endif
