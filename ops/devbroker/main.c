/* main.c -- phx-devbroker: an in-memory Kafka cluster for development and tests.
 *
 * Phoenix's integration tests and the local stack need a Kafka that starts in milliseconds,
 * needs no JVM and leaves nothing behind. librdkafka ships one: its mock cluster speaks enough of
 * the Kafka protocol for producers, consumers and consumer groups. This program wraps it, creates
 * the Phoenix topics, announces the bootstrap list and waits for SIGTERM or SIGINT.
 *
 * It is NOT a production Kafka: data lives in memory only and is gone when the process exits,
 * there is no replication in any real sense, no retention, no security, and no admin API
 * (topics exist because this program creates them).
 *
 * Signals are blocked in every thread (the mask is set before librdkafka starts its threads, so
 * they inherit it) and taken synchronously with sigwait(): no work happens in a handler. */
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PHX_DEVBROKER_MAX_TOPICS 64

/* The topics every Phoenix process expects to exist (no process creates topics itself). */
static const char *const phx_devbroker_topics[] = {
    "phx.jobs",      "phx.results",    "phx.replies",      "phx.events",      "phx.dlq",
    "phx.tasks.llm", "phx.tasks.exec", "phx.tasks.safety", "phx.tasks.tools", "phx.tasks.kb",
};

struct phx_devbroker_opts {
    int brokers;
    int partitions;
    const char *bootstrap_file;
    const char *topics[PHX_DEVBROKER_MAX_TOPICS]; /* the built-ins, then --topic ones */
    int ntopics;
    enum phx_log_level log_level;
};

static void phx_devbroker_usage(FILE *f)
{
    fprintf(
        f, "Usage: phx-devbroker [OPTION]...\n"
           "\n"
           "Run an in-memory Kafka cluster (librdkafka's mock cluster) with the Phoenix topics,\n"
           "print \"PHX_KAFKA_BROKERS=<bootstrap list>\" on stdout, and serve until SIGTERM or\n"
           "SIGINT.\n"
           "\n"
           "FOR DEVELOPMENT AND TESTS ONLY. This is not a production Kafka: it keeps every\n"
           "message in memory and loses all of it when it exits. It has no persistence, no\n"
           "retention, no security, and no topic admin API. It finds each fetch's offset by\n"
           "walking a partition's log from its oldest batch, so it slows down as it fills:\n"
           "restart it between long benchmark runs (make bench does).\n"
           "\n"
           "Options:\n"
           "  --brokers N            number of brokers, 1..32 (default 3)\n"
           "  --partitions N         partitions per topic, 1..1000 (default 12)\n"
           "  --bootstrap-file PATH  also write the bootstrap list to PATH, atomically (temporary\n"
           "                         file + rename, so a reader never sees a partial file);\n"
           "                         removed again on exit\n"
           "  --topic NAME           create an extra topic; repeatable\n"
           "  --log-level LEVEL      debug, info, warn or error (default info)\n"
           "  -h, --help             show this help and exit\n"
           "\n"
           "Fault injection (for chaos tests): SIGUSR1 takes the next broker down (1, 2, ...\n"
           "in turn; its partitions' leaders become unreachable), SIGUSR2 brings every broker\n"
           "back up, SIGWINCH makes the next 20 Produce, Fetch, OffsetCommit and Heartbeat\n"
           "requests (from any client) fail with a retryable error.\n"
           "\n"
           "Topics created (replication factor min(3, brokers)):");
    int col = 80;
    for (size_t i = 0; i < sizeof(phx_devbroker_topics) / sizeof(phx_devbroker_topics[0]); i++) {
        int len = (int)strlen(phx_devbroker_topics[i]) + 1;
        if (col + len > 78) {
            fputs("\n ", f);
            col = 1;
        }
        fprintf(f, " %s", phx_devbroker_topics[i]);
        col += len;
    }
    fprintf(f, "\n"
               "\n"
               "Logs are JSON lines on stderr. Exit status: 0 after a clean shutdown, 1 when the\n"
               "cluster cannot be started, 2 for bad options.\n");
}

static int phx_devbroker_parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* Kafka's rule: 1..249 of [a-zA-Z0-9._-], and not "." or "..". */
static int phx_devbroker_topic_valid(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void phx_devbroker_add_topic(struct phx_devbroker_opts *o, const char *t)
{
    for (int i = 0; i < o->ntopics; i++) {
        if (strcmp(o->topics[i], t) == 0)
            return; /* asking twice (or for a built-in) is harmless */
    }
    o->topics[o->ntopics++] = t;
}

/* 0 to run, 1 after --help, -1 on a bad command line (already reported). */
static int phx_devbroker_parse_args(int argc, char **argv, struct phx_devbroker_opts *o)
{
    enum { OPT_BROKERS = 256, OPT_PARTITIONS, OPT_BOOTSTRAP_FILE, OPT_TOPIC, OPT_LOG_LEVEL };
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, OPT_BROKERS},
        {"partitions", required_argument, NULL, OPT_PARTITIONS},
        {"bootstrap-file", required_argument, NULL, OPT_BOOTSTRAP_FILE},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const size_t nbuiltin = sizeof(phx_devbroker_topics) / sizeof(phx_devbroker_topics[0]);
    for (size_t i = 0; i < nbuiltin; i++)
        phx_devbroker_add_topic(o, phx_devbroker_topics[i]);

    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BROKERS:
            if (phx_devbroker_parse_int(optarg, 1, 32, &o->brokers) < 0)
                goto bad_value;
            break;
        case OPT_PARTITIONS:
            if (phx_devbroker_parse_int(optarg, 1, 1000, &o->partitions) < 0)
                goto bad_value;
            break;
        case OPT_BOOTSTRAP_FILE:
            if (!*optarg)
                goto bad_value;
            o->bootstrap_file = optarg;
            break;
        case OPT_TOPIC:
            if (!phx_devbroker_topic_valid(optarg))
                goto bad_value;
            if (o->ntopics == PHX_DEVBROKER_MAX_TOPICS) {
                fprintf(stderr, "phx-devbroker: at most %d topics\n", PHX_DEVBROKER_MAX_TOPICS);
                return -1;
            }
            phx_devbroker_add_topic(o, optarg);
            break;
        case OPT_LOG_LEVEL:
            if (phx_log_level_parse(optarg, &o->log_level) < 0)
                goto bad_value;
            break;
        case 'h':
            phx_devbroker_usage(stdout);
            return 1;
        default: /* getopt_long has said what was wrong */
            goto usage_hint;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "phx-devbroker: unexpected argument '%s'\n", argv[optind]);
        goto usage_hint;
    }
    return 0;

bad_value: /* longopts[] lists the OPT_* values in order, from OPT_BROKERS */
    fprintf(stderr, "phx-devbroker: invalid value '%s' for --%s\n", optarg,
            longopts[c - OPT_BROKERS].name);
usage_hint:
    fprintf(stderr, "Try 'phx-devbroker --help' for more information.\n");
    return -1;
}

/* Write the bootstrap list to a temporary file in the same directory and rename it into place:
 * rename(2) is atomic, so a test polling for the file reads all of it or nothing. */
static int phx_devbroker_write_bootstrap(const char *path, const char *bootstrap)
{
    char tmp[PATH_MAX];
    int fd = -1;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    char line[4096];
    int n = snprintf(line, sizeof(line), "%s\n", bootstrap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        errno = EOVERFLOW;
        goto err;
    }
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(fd, line + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            goto err;
        off += w;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        goto err;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto err;
    return 0;
err:;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

/* librdkafka's own log lines, as JSON lines like ours (syslog levels: 0 emerg .. 7 debug). */
static void phx_devbroker_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac,
                                      const char *buf)
{
    (void)rk;
    /* The bookkeeping client has no bootstrap.servers on purpose (see phx_devbroker_client);
     * librdkafka's warning about it would only mislead whoever reads the log. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "bootstrap.servers"))
        level = 7;
    enum phx_log_level lvl = level <= 3   ? PHX_LOG_ERROR
                             : level <= 4 ? PHX_LOG_WARN
                             : level <= 6 ? PHX_LOG_INFO
                                          : PHX_LOG_DEBUG;
    phx_logj(lvl, NULL, NULL, "rdkafka %s: %s", fac, buf);
}

/* The mock cluster needs a client instance for its bookkeeping (threads, logging); a producer
 * with no bootstrap servers never talks to anyone. */
static rd_kafka_t *phx_devbroker_client(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, phx_devbroker_rdkafka_log);
    if (rd_kafka_conf_set(conf, "client.id", "phx-devbroker", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        phx_log_error("devbroker: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        phx_log_error("devbroker: cannot create the client instance: %s", errstr);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new only takes it on success */
    }
    return rk;
}

/* librdkafka's mock brokers leave Nagle's algorithm on for the connections they accept. A
 * client that pipelines requests (a producer sending one ProduceRequest per partition of a
 * batch) then gets the second response held until its delayed ACK, 40 ms on Linux: a hop
 * that should take a millisecond takes 40. The mock offers no hook for its sockets, so this
 * thread sets TCP_NODELAY on every socket of the process every 100 ms (connections are long
 * lived: a new one runs at most that long with Nagle; non-TCP descriptors refuse harmlessly). */
static atomic_int phx_devbroker_stop;

static void *phx_devbroker_nodelay_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&phx_devbroker_stop)) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char *end;
            long fd = strtol(e->d_name, &end, 10);
            int one = 1;
            if (*end == '\0' && end != e->d_name && fd > 2)
                (void)setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        if (d)
            closedir(d);
        phx_sleep_ms(100);
    }
    return NULL;
}

static int phx_devbroker_create_topics(rd_kafka_mock_cluster_t *mc,
                                       const struct phx_devbroker_opts *o)
{
    int rf = o->brokers < 3 ? o->brokers : 3;
    for (int i = 0; i < o->ntopics; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, o->topics[i], o->partitions, rf);
        if (e) {
            phx_log_error("devbroker: cannot create topic %s: %s", o->topics[i],
                          rd_kafka_err2str(e));
            return -1;
        }
    }
    phx_log_info("devbroker: created %d topics, %d partitions each, replication factor %d",
                 o->ntopics, o->partitions, rf);
    return 0;
}

/* Request error injection: the next requests of each kind fail with an error a client must
 * retry (librdkafka does, for each of these). API keys from the Kafka protocol: Produce 0,
 * Fetch 1, OffsetCommit 8, Heartbeat 12. */
static void phx_devbroker_request_errors(rd_kafka_mock_cluster_t *mc)
{
    enum { N = 20 };
    static const struct {
        int16_t api;
        rd_kafka_resp_err_t err;
    } inject[] = {
        {0, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS},
        {1, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
        {8, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS},
        {12, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE},
    };
    for (size_t i = 0; i < sizeof(inject) / sizeof(inject[0]); i++) {
        rd_kafka_resp_err_t errs[N];
        for (int k = 0; k < N; k++)
            errs[k] = inject[i].err;
        rd_kafka_mock_push_request_errors_array(mc, inject[i].api, N, errs);
    }
    phx_log_warn("devbroker: fault injection: the next %d Produce, Fetch, OffsetCommit and "
                 "Heartbeat requests fail",
                 N);
}

int main(int argc, char **argv)
{
    struct phx_devbroker_opts o = {.brokers = 3, .partitions = 12, .log_level = PHX_LOG_INFO};
    int pr = phx_devbroker_parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    phx_log_init("phx-devbroker", o.log_level);

    /* Block before any thread exists so librdkafka's threads inherit the mask and the signals
     * can only be taken by sigwait() below. */
    sigset_t stop;
    phx_signals_block(&stop);
    sigaddset(&stop, SIGUSR1); /* fault injection, see --help */
    sigaddset(&stop, SIGUSR2);
    sigaddset(&stop, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    int rc = 1, wrote_file = 0, nodelay_started = 0;
    pthread_t nodelay;
    rd_kafka_mock_cluster_t *mc = NULL;
    rd_kafka_t *rk = phx_devbroker_client();
    if (!rk)
        goto out;
    mc = rd_kafka_mock_cluster_new(rk, o.brokers);
    if (!mc) {
        phx_log_error("devbroker: cannot create the mock cluster");
        goto out;
    }
    if (phx_devbroker_create_topics(mc, &o) < 0)
        goto out;
    nodelay_started = pthread_create(&nodelay, NULL, phx_devbroker_nodelay_main, NULL) == 0;
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    if (o.bootstrap_file) {
        if (phx_devbroker_write_bootstrap(o.bootstrap_file, bootstrap) < 0) {
            phx_log_error("devbroker: cannot write %s: %s", o.bootstrap_file, strerror(errno));
            goto out;
        }
        wrote_file = 1;
    }
    printf("PHX_KAFKA_BROKERS=%s\n", bootstrap);
    fflush(stdout);
    phx_log_info("devbroker: %d broker%s at %s (in memory: data is lost on exit)", o.brokers,
                 o.brokers == 1 ? "" : "s", bootstrap);

    int sig = 0, next_down = 0;
    for (;;) {
        if (sigwait(&stop, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            int id = 1 + next_down++ % o.brokers;
            rd_kafka_mock_broker_set_down(mc, id);
            phx_log_warn("devbroker: fault injection: broker %d down", id);
        } else if (sig == SIGWINCH) {
            phx_devbroker_request_errors(mc);
        } else if (sig == SIGUSR2) {
            for (int id = 1; id <= o.brokers; id++)
                rd_kafka_mock_broker_set_up(mc, id);
            phx_log_warn("devbroker: fault injection: all brokers up");
        } else {
            break;
        }
    }
    phx_log_info("devbroker: %s, shutting down", strsignal(sig));
    rc = 0;

out:
    if (nodelay_started) {
        atomic_store(&phx_devbroker_stop, 1);
        pthread_join(nodelay, NULL);
    }
    if (wrote_file && unlink(o.bootstrap_file) < 0)
        phx_log_warn("devbroker: cannot remove %s: %s", o.bootstrap_file, strerror(errno));
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (rk)
        rd_kafka_destroy(rk);
    return rc;
}
