/* main.c -- phx: command dispatch and usage. */
#include "cli.h"
#include "log.h"
#include "redteam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char phx_cli_usage[] =
    "usage: phx COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  submit FILE|- [--wait] [--timeout S]\n"
    "      Publish the job in FILE (or stdin) to phx.jobs. Missing fields are filled: schema,\n"
    "      id (a new one), tenant (\"default\"). Prints {\"job_id\": ...}; with --wait, waits for\n"
    "      the reply on the job's reply_to (default phx.replies) and prints it. --timeout S\n"
    "      bounds the wait (default 60).\n"
    "  status JOB_ID [--wait] [--timeout S]\n"
    "      Print the job's state, steps and outputs from Redis. --wait polls until the job\n"
    "      is final (exit 0 only if it succeeded).\n"
    "  trace JOB_ID [--json] [--timeout S]\n"
    "      The job's timeline: its events (phx.events) and the pools' results (phx.results:\n"
    "      status, duration, worker) in time order, then per step its state, attempts, time\n"
    "      from first dispatch to last result and workers; state and trace id from Redis.\n"
    "      --timeout S bounds the topic reads (default 30).\n"
    "  probe [--interval S] [--timeout S] [--admin HOST:PORT] [--job FILE] [--tenant T]\n"
    "        [--reply-topic T] [--count N]\n"
    "      Synthetic monitoring, a long-running process: every S seconds (default 15) publish\n"
    "      a canary job (default: tool.calc 6*7, whose answer must be 42; or the job in FILE,\n"
    "      which must succeed), wait up to --timeout S (default 30) for its reply, and export\n"
    "      phx_probe_runs_total{outcome}, phx_probe_latency_seconds and\n"
    "      phx_probe_last_success_timestamp_seconds on /metrics of --admin (default\n"
    "      127.0.0.1:0, the port is logged). Canaries run as tenant T (default probe) and\n"
    "      reply on T (default phx.replies). --count N: stop after N canaries, exit 1 unless\n"
    "      all passed. SIGTERM stops it.\n"
    "  keys create [--tenant T] [--principal P] [--roles R] [--expires-in S]\n"
    "      Create an API key for the ingress (stored hashed in Redis) and print it once (its\n"
    "      id goes to stderr). Defaults: tenant \"default\", principal \"cli\", roles \"admin\"\n"
    "      (roles: admin, submitter, developer, reader, or scopes such as jobs:read).\n"
    "  keys list [--tenant T]\n"
    "      One JSON line per key: id, tenant, principal, roles, state (active, expired, revoked).\n"
    "  keys revoke ID\n"
    "      Revoke at once (every ingress replica refuses it from its next request).\n"
    "  keys rotate ID [--grace S]\n"
    "      Print a new key with the same identity; the old one stops working after S seconds.\n"
    "  dlq list [--topic T] [--reason TEXT] [--limit N]\n"
    "      One line per dead letter on phx.dlq: PARTITION:OFFSET, source topic[partition]@offset,\n"
    "      key, reason. Starts after the purge mark.\n"
    "  dlq show PARTITION:OFFSET\n"
    "      The whole dead letter, with the original bytes (payload_b64).\n"
    "  dlq replay (PARTITION:OFFSET | --all) [--topic T] [--reason TEXT]\n"
    "      Publish the original bytes again, with the original key, to the original topic;\n"
    "      they are validated again there (still-bad input returns to the DLQ).\n"
    "  dlq purge\n"
    "      Move the purge mark to the end of phx.dlq (records go with Kafka retention).\n"
    "  secrets keygen | secrets seal --key-file K [FILE] | secrets open --key-file K FILE\n"
    "      Make a 256-bit key; seal a secret (from FILE or stdin) into the text a *_FILE\n"
    "      option may name (opened with the key in PHX_SECRETS_KEY_FILE); open one to check.\n"
    "  persona set NAME [--file] FILE|- | get NAME | list | delete NAME\n"
    "      The LLM pool's personas (Redis hash phx:llm:personas), checked against\n"
    "      schemas/llm-persona.v1.json before they are stored; phx-llm reads them per call.\n"
    "  kb create NAME --dim N [--metric cosine|dot|l2] [--capacity N] [--ttl S]\n"
    "            [--policy score|lru|lfu|none] | kb list | kb stats NAME | kb drop NAME\n"
    "      Knowledge base collections for phx-kb (docs/kb.md): create one (its dimension and\n"
    "      metric are fixed), list them with their record counts, show one's counts, drop one.\n"
    "  kb backup NAME FILE | kb restore FILE\n"
    "      Write a collection to FILE (versioned, a CRC per record, SHA-256 of the file), or\n"
    "      restore one after verifying the whole file (a damaged file is refused; an existing\n"
    "      collection is never overwritten). A progress bar on a terminal.\n"
    "  security list [--json] | security release ID | security audit [--count N]\n"
    "  security throttle TENANT [--per-min N] [--burst N] | security quarantine JOB_ID\n"
    "  security suspend tenant|key|principal SUBJECT        (each: [--reason TEXT] [--ttl S])\n"
    "      Security responses (docs/security.md, \"Blue team\"): list the active ones (from\n"
    "      phx-sentinel or operators), undo one, apply one by hand, or read the audit trail\n"
    "      (Redis stream phx:audit). A suspended tenant, API key id or principal (TENANT/P)\n"
    "      gets 403 from every ingress within PHX_INGRESS_GUARD_REFRESH_MS; a throttle sets\n"
    "      the tenant's rate limit; a quarantined job shows no outputs. Audited as\n"
    "      $PHX_OPERATOR (default \"operator\").\n"
    "  intel import --kind domains|ips|urls|hashes --source NAME --out FEED_FILE\n"
    "               [--expires DURATION] [--max-bad N] FILE|-\n"
    "      Convert a plain-text blocklist (one entry a line, # comments, hosts files,\n"
    "      AdBlock ||host^ rules, sha256sum output) into a threat feed file (docs/security.md,\n"
    "      \"Threat intelligence feeds\"), replaced atomically. Every bad line is reported\n"
    "      with its number; more than --max-bad (default 0) of them, or no entries, writes\n"
    "      nothing (exit 1). DURATION: 30d, 12h, ... (default: never expires).\n"
    "  safety feedback JOB_ID [--step ID] --false-positive|--missed [--detector D]\n"
    "                  [--note TEXT] | safety feedback list --tenant T [--json]\n"
    "  safety feedback rollback ID\n"
    "      Label a safety.scan verdict of a job (docs/security.md, \"Operator feedback\"):\n"
    "      a false positive allow-lists that exact text for the findings' detectors and\n"
    "      raises the tenant's thresholds of inject/code/url by 0.05; a miss lowers one by\n"
    "      0.05; offsets stay within +-0.15. Audited (phx:audit) as $PHX_OPERATOR; rollback\n"
    "      undoes one label's changes.\n"
    "  config check [--for BINARY[,BINARY...]|all] [--no-file-checks] FILE...\n"
    "      Validate configuration files (JSON for PHX_CONFIG_FILE, or KEY=VALUE environment\n"
    "      files) as one process would read them, against the option tables of the binaries\n"
    "      beside phx (or in PHX_BIN): unknown names, bad values, librdkafka properties,\n"
    "      missing required options, secret files (*_FILE) missing or world-readable. Targets:\n"
    "      --for, else the server a file name names (phx-tools.env), else every server. One\n"
    "      line per problem (FILE:LINE: ...); exit 1 if any (docs/operations/config.md).\n"
    "  topics plan [--scale small|medium|large] [--jobs-per-s N] [--steps-per-job N]\n"
    "              [--threads N] [--replication-factor N] [--min-insync N]\n"
    "              [--bootstrap HOST:PORT] [--command-config FILE]\n"
    "      Print the kafka-topics.sh commands creating every Phoenix topic for a load: the\n"
    "      partitions (at least --threads, the largest pool's replicas x PHX_CONCURRENCY),\n"
    "      replication 3, min.insync.replicas 2, retention and cleanup policy, each explained.\n"
    "      Scales: small 50 jobs/s and 12 threads, medium 500 and 36 (default), large 5000\n"
    "      and 144.\n"
    "  redteam [--suites exec,safety,ssrf,auth,payload] [--quick] [--json] [--timeout S]\n"
    "          [--verbose]\n"
    "      Attack the deployment through phx.jobs and the HTTP ingress and print a scorecard\n"
    "      (docs/security.md, \"Red team\"). Exit 1 on any escape or a safety detection rate\n"
    "      outside its bound, 3 when a case could not be decided. Settings: PHX_INGRESS_URL,\n"
    "      PHX_REDTEAM_API_KEY (an admin key; enables key replay, scope and payload cases),\n"
    "      PHX_REDTEAM_API_KEY_B (an admin key of another tenant: cross-tenant cases),\n"
    "      PHX_REDTEAM_TENANT (tenant of its Kafka jobs, default redteam), PHX_REDTEAM_DIR\n"
    "      (attack programs, default ops/redteam), PHX_REDTEAM_EXEC_ONLY (a comma-separated\n"
    "      subset of them, by name), PHX_EVAL_DIR (safety corpus, default\n"
    "      ../shared/eval), PHX_REDTEAM_SAFETY_PER_FILE (records per corpus file, default 40),\n"
    "      PHX_REDTEAM_SAFETY_MIN_RATE (default 0.40), PHX_REDTEAM_SAFETY_MAX_FPR (default\n"
    "      0.05), PHX_REDTEAM_TOPICS (payload suite topics, default phx.jobs, phx.results and\n"
    "      phx.tasks.tools|exec|llm|safety|kb), PHX_REDTEAM_BAIT_ADDR (HOST:PORT http_fetch\n"
    "      may reach, for the redirect cases).\n"
    "\n"
    "Environment: PHX_KAFKA_BROKERS (default 127.0.0.1:9092), PHX_REDIS_URL (default\n"
    "redis://127.0.0.1:6379/0), PHX_KAFKA_CONF_<property> for any librdkafka property.\n"
    "`source var/stack.env` points phx at the local stack.\n"
    "\n"
    "Exit codes: 0 ok; 1 job failed/rejected/cancelled or not found; 2 usage or bad input;\n"
    "3 timeout; 4 Kafka or Redis unreachable.\n";

void phx_cli_env_load(phx_cli_env *env)
{
    env->brokers = getenv("PHX_KAFKA_BROKERS");
    if (!env->brokers || !*env->brokers)
        env->brokers = "127.0.0.1:9092";
    env->redis_url = getenv("PHX_REDIS_URL");
    if (!env->redis_url || !*env->redis_url)
        env->redis_url = "redis://127.0.0.1:6379/0";
}

int main(int argc, char **argv)
{
    phx_log_init("phx", PHX_LOG_WARN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(phx_cli_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? PHX_EXIT_USAGE : PHX_EXIT_OK;
    }
    phx_cli_env env;
    phx_cli_env_load(&env);
    if (strcmp(argv[1], "submit") == 0)
        return phx_cli_submit(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return phx_cli_status(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "trace") == 0)
        return phx_cli_trace(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "keys") == 0)
        return phx_cli_keys(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "dlq") == 0)
        return phx_cli_dlq(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "secrets") == 0)
        return phx_cli_secrets(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "persona") == 0)
        return phx_cli_persona(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "kb") == 0)
        return phx_cli_kb(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "probe") == 0)
        return phx_cli_probe(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "config") == 0)
        return phx_cli_config(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "topics") == 0)
        return phx_cli_topics(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "redteam") == 0)
        return phx_cli_redteam(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "safety") == 0)
        return phx_cli_safety(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "intel") == 0)
        return phx_cli_intel(&env, argc - 1, argv + 1);
    if (strcmp(argv[1], "security") == 0)
        return phx_cli_security(&env, argc - 1, argv + 1);
    fprintf(stderr, "phx: unknown command '%s'\n\n%s", argv[1], phx_cli_usage);
    return PHX_EXIT_USAGE;
}
