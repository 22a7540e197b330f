/* kafka_metrics.c -- consumer lag from librdkafka statistics (see kafka_metrics.h).
 *
 * Why statistics and not a watermark query per partition: the report arrives on the consumer's
 * own poll, costs no broker round trip, and already knows both ends (hi_offset and the stored
 * offset), so lag is exact as of the report without a second view of the partition. */
#include "kafka_metrics.h"
#include "metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static phx_metric *phx_kafka_lag_gauge(const char *topic, int partition)
{
    char t[256], labels[320];
    phx_metrics_escape_label(t, sizeof(t), topic);
    snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%d\"", t, partition);
    return phx_gauge("phx_kafka_consumer_lag_messages",
                     "Messages in a partition past what this consumer has finished (from "
                     "librdkafka statistics; 0 once the partition is given away).",
                     labels);
}

/* A partition of which nothing was ever stored or committed reports no lag at all (librdkafka
 * measures from those offsets), which would hide the backlog of a new consumer group or of a
 * partition receiving its first messages. Such a consumer starts at the partition's beginning
 * (auto.offset.reset=earliest, kafka.c), so nothing from the low watermark on is finished yet:
 * the lag is end - low, where the end is the last stable offset under read_committed (the
 * default isolation) or the high watermark. -1 when the report lacks them. */
static json_int_t phx_kafka_lag_unstarted(json_t *p)
{
    json_int_t lo = json_integer_value(json_object_get(p, "lo_offset"));
    json_int_t end = json_integer_value(json_object_get(p, "ls_offset"));
    if (!json_is_integer(json_object_get(p, "ls_offset")) || end < 0)
        end = json_integer_value(json_object_get(p, "hi_offset"));
    if (!json_is_integer(json_object_get(p, "lo_offset")) || lo < 0 || end < lo)
        return -1;
    return end - lo;
}

int phx_kafka_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    (void)opaque;
    json_t *root = json_loadb(json, len, 0, NULL);
    const char *tname, *pname;
    json_t *t, *p;
    json_object_foreach(json_object_get(root, "topics"), tname, t)
    {
        json_object_foreach(json_object_get(t, "partitions"), pname, p)
        {
            json_int_t part = json_integer_value(json_object_get(p, "partition"));
            /* -1 is librdkafka's internal unassigned partition; desired = assigned to us. */
            if (part < 0 || !json_is_true(json_object_get(p, "desired")))
                continue;
            json_t *stored = json_object_get(p, "consumer_lag_stored");
            json_t *committed = json_object_get(p, "consumer_lag");
            json_int_t lag;
            if (json_is_integer(stored) && json_integer_value(stored) >= 0)
                lag = json_integer_value(stored);
            else if (json_is_integer(committed) && json_integer_value(committed) >= 0)
                lag = json_integer_value(committed);
            else
                lag = phx_kafka_lag_unstarted(p);
            if (lag >= 0)
                phx_metric_set(phx_kafka_lag_gauge(tname, (int)part), (double)lag);
        }
    }
    json_decref(root);
    return 0;
}

void phx_kafka_lag_forget(const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; parts && i < parts->cnt; i++)
        phx_metric_set(phx_kafka_lag_gauge(parts->elems[i].topic, parts->elems[i].partition), 0);
}
