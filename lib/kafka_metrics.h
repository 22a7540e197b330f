/* kafka_metrics.h -- Kafka client metrics from librdkafka's statistics (kafka.c wires them in).
 *
 * Consumers emit statistics every statistics.interval.ms (5 s by default here; override with
 * PHX_KAFKA_CONF_statistics_interval_ms, 0 turns them off). From each report the consumer's
 * assigned partitions set
 *   phx_kafka_consumer_lag_messages{topic,partition}
 * to the messages between the partition's end and the offset this consumer stored (what it has
 * finished), or the committed offset when nothing is stored yet, or -- for a partition of which
 * nothing was ever stored or committed -- everything from its low watermark on (the consumer
 * starts there: auto.offset.reset=earliest). Partitions are bounded (topics x
 * partitions), so the label set is too. A partition given away in a rebalance is set to 0 here:
 * its new owner reports it, and sum/max over replicas stay right. */
#ifndef PHX_KAFKA_METRICS_H
#define PHX_KAFKA_METRICS_H

#include <librdkafka/rdkafka.h>

/* rd_kafka_conf_set_stats_cb callback: parses the report, sets the lag gauges, returns 0 (so
 * librdkafka frees json). */
int phx_kafka_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque);
/* Zero the lag of partitions this consumer no longer owns. */
void phx_kafka_lag_forget(const rd_kafka_topic_partition_list_t *parts);

#endif
