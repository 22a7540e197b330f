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
            json_int_t lag = json_integer_value(json_object_get(p, "consumer_lag_stored"));
            if (!json_is_integer(json_object_get(p, "consumer_lag_stored")) || lag < 0)
                lag = json_integer_value(json_object_get(p, "consumer_lag"));
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
