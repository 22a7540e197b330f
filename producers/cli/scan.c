/* scan.c -- read a topic snapshot to its end: shared by `phx dlq` and `phx trace`.
 *
 * A snapshot reader (phx_kafka_reader) is assigned to every partition with the high watermarks
 * seen at open; this visits every message below them. Progress is tracked by offsets, not by
 * "end of partition" events: a partition that starts at its end is done before any message
 * arrives, and a compacted or deleted range simply moves the next offset past it. */
#include "cli.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

int phx_cli_snapshot_scan(rd_kafka_t *rk, const int64_t *hi, int nparts, int timeout_ms,
                          const char *what, phx_cli_visit_fn fn, void *arg)
{
    int rc = 0;
    int64_t deadline = phx_mono_ms() + timeout_ms;
    int64_t *next = calloc((size_t)nparts, sizeof(*next));
    rd_kafka_topic_partition_list_t *pos = NULL;
    rd_kafka_assignment(rk, &pos);
    for (int i = 0; pos && i < pos->cnt; i++)
        if (pos->elems[i].partition < nparts)
            next[pos->elems[i].partition] = pos->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(pos);
    for (;;) {
        int pending = 0;
        for (int i = 0; i < nparts; i++)
            pending += next[i] < hi[i];
        if (!pending)
            break;
        if (phx_mono_ms() > deadline) {
            fprintf(stderr, "phx: timed out reading %s\n", what);
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (m->err || m->partition >= nparts) {
            rd_kafka_message_destroy(m);
            continue;
        }
        next[m->partition] = m->offset + 1;
        int v = m->offset < hi[m->partition] ? fn(arg, m) : 0;
        rd_kafka_message_destroy(m);
        if (v != 0) {
            rc = v < 0 ? -1 : 0;
            break;
        }
    }
    free(next);
    return rc;
}
