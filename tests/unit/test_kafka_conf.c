/* test_kafka_conf.c -- every librdkafka security setting passes through to the client
 * configuration: from the environment (PHX_KAFKA_CONF_<property>), from a secret file
 * (PHX_KAFKA_CONF_<property>_FILE, for passwords), and from the JSON config file
 * (PHX_CONFIG_FILE), with the environment winning. The effective value is read back from
 * librdkafka's own configuration object (rd_kafka_conf_get), so a setting dropped or renamed on
 * the way fails here. Refused properties and values must fail naming the variable, and
 * phx_kafka_conf_check (what `phx config check` uses) must judge them the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/config.h"
#include "../../lib/kafka.h"

extern char **environ;

/* Every security-related property an operator may need, with a value librdkafka accepts
 * without touching the file system at configuration time. (Debian's librdkafka is built
 * without OIDC, so sasl.oauthbearer.method=oidc and its client settings are refused there --
 * by librdkafka, naming the variable, like any refused property.) */
static const struct {
    const char *env, *prop, *value;
} security[] = {
    {"PHX_KAFKA_CONF_security_protocol", "security.protocol", "sasl_ssl"},
    {"PHX_KAFKA_CONF_sasl_mechanisms", "sasl.mechanisms", "SCRAM-SHA-512"},
    {"PHX_KAFKA_CONF_sasl_username", "sasl.username", "phoenix"},
    {"PHX_KAFKA_CONF_ssl_ca_location", "ssl.ca.location", "/etc/phoenix/kafka/ca.crt"},
    {"PHX_KAFKA_CONF_ssl_certificate_location", "ssl.certificate.location",
     "/etc/phoenix/kafka/tls.crt"},
    {"PHX_KAFKA_CONF_ssl_key_location", "ssl.key.location", "/etc/phoenix/kafka/tls.key"},
    {"PHX_KAFKA_CONF_ssl_endpoint_identification_algorithm",
     "ssl.endpoint.identification.algorithm", "https"},
    {"PHX_KAFKA_CONF_enable_ssl_certificate_verification", "enable.ssl.certificate.verification",
     "true"},
    {"PHX_KAFKA_CONF_ssl_cipher_suites", "ssl.cipher.suites", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"PHX_KAFKA_CONF_ssl_crl_location", "ssl.crl.location", "/etc/phoenix/kafka/crl.pem"},
    {"PHX_KAFKA_CONF_ssl_keystore_location", "ssl.keystore.location", "/etc/phoenix/kafka/ks.p12"},
    {"PHX_KAFKA_CONF_sasl_kerberos_service_name", "sasl.kerberos.service.name", "kafka"},
    {"PHX_KAFKA_CONF_sasl_kerberos_principal", "sasl.kerberos.principal", "phoenix@EXAMPLE.COM"},
    {"PHX_KAFKA_CONF_sasl_kerberos_keytab", "sasl.kerberos.keytab", "/etc/phoenix/phoenix.keytab"},
    {"PHX_KAFKA_CONF_sasl_oauthbearer_config", "sasl.oauthbearer.config", "principal=phoenix"},
};
#define NSEC (sizeof(security) / sizeof(security[0]))

static void clear_kafka_env(void)
{
    for (;;) {
        char **e = environ;
        while (*e && strncmp(*e, "PHX_KAFKA_CONF_", 15) != 0)
            e++;
        if (!*e)
            break;
        char name[300];
        snprintf(name, sizeof(name), "%.*s", (int)(strchr(*e, '=') - *e), *e);
        unsetenv(name);
    }
    unsetenv("PHX_CONFIG_FILE");
}

static char *conf_get(rd_kafka_conf_t *conf, const char *prop)
{
    static char buf[1024];
    size_t sz = sizeof(buf);
    assert_int_equal(rd_kafka_conf_get(conf, prop, buf, &sz), RD_KAFKA_CONF_OK);
    return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void test_security_env(void **state)
{
    (void)state;
    clear_kafka_env();
    for (size_t i = 0; i < NSEC; i++)
        setenv(security[i].env, security[i].value, 1);
    phx_err err;
    rd_kafka_conf_t *conf = phx_kafka_conf("k1:9093,k2:9093", &err);
    if (!conf)
        fail_msg("phx_kafka_conf: %s", err.message);
    for (size_t i = 0; i < NSEC; i++) {
        const char *got = conf_get(conf, security[i].prop);
        if (strcmp(got, security[i].value) != 0)
            fail_msg("%s: librdkafka has %s=%s, want %s", security[i].env, security[i].prop, got,
                     security[i].value);
        char e[512];
        assert_int_equal(phx_kafka_conf_check(security[i].env, security[i].value, e, sizeof(e)), 0);
    }
    assert_string_equal(conf_get(conf, "bootstrap.servers"), "k1:9093,k2:9093");
    rd_kafka_conf_destroy(conf);
    clear_kafka_env();
}

/* Passwords come from files: PHX_KAFKA_CONF_<property>_FILE. */
static void test_secret_files(void **state)
{
    (void)state;
    clear_kafka_env();
    char dir[] = "/tmp/phx-deploy-kconf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pw[256], kp[256];
    snprintf(pw, sizeof(pw), "%s/sasl-password", dir);
    snprintf(kp, sizeof(kp), "%s/key-password", dir);
    write_file(pw, "sasl-pass-1234567\n", 0600);
    write_file(kp, "key-pass-7654321\n", 0600);
    setenv("PHX_KAFKA_CONF_sasl_password_FILE", pw, 1);
    setenv("PHX_KAFKA_CONF_ssl_key_password_FILE", kp, 1);
    phx_err err;
    rd_kafka_conf_t *conf = phx_kafka_conf("k:9093", &err);
    if (!conf)
        fail_msg("phx_kafka_conf: %s", err.message);
    assert_string_equal(conf_get(conf, "sasl.password"), "sasl-pass-1234567");
    assert_string_equal(conf_get(conf, "ssl.key.password"), "key-pass-7654321");
    rd_kafka_conf_destroy(conf);
    char e[512];
    assert_int_equal(phx_kafka_conf_check("PHX_KAFKA_CONF_sasl_password_FILE", pw, e, sizeof(e)),
                     1);

    /* A missing secret file stops the configuration, naming the variable. */
    setenv("PHX_KAFKA_CONF_sasl_password_FILE", "/nonexistent/phx-sasl", 1);
    assert_null(phx_kafka_conf("k:9093", &err));
    assert_non_null(strstr(err.message, "PHX_KAFKA_CONF_sasl_password_FILE"));
    assert_non_null(strstr(err.message, "/nonexistent/phx-sasl"));
    unlink(pw);
    unlink(kp);
    rmdir(dir);
    clear_kafka_env();
}

typedef struct tcfg {
    phx_common common;
} tcfg;
static const phx_opt opts[] = {PHX_COMMON_OPTS(tcfg)};

/* The JSON config file carries librdkafka properties too; the environment wins over it. */
static void test_config_file(void **state)
{
    (void)state;
    clear_kafka_env();
    char path[] = "/tmp/phx-deploy-kconf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path,
               "{\"PHX_KAFKA_CONF_security_protocol\": \"ssl\", "
               "\"PHX_KAFKA_CONF_ssl_ca_location\": \"/from/file/ca.pem\", "
               "\"PHX_KAFKA_CONF_sasl_username\": \"file-user\", "
               "\"PHX_KAFKA_CONF_socket_keepalive_enable\": true}",
               0600);
    setenv("PHX_CONFIG_FILE", path, 1);
    setenv("PHX_KAFKA_CONF_sasl_username", "env-user", 1);
    tcfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    char e[512];
    assert_int_equal(phx_config_load(opts, sizeof(opts) / sizeof(opts[0]), &cfg, e, sizeof(e)), 0);
    phx_err err;
    rd_kafka_conf_t *conf = phx_kafka_conf(cfg.common.kafka_brokers, &err);
    assert_non_null(conf);
    assert_string_equal(conf_get(conf, "security.protocol"), "ssl");
    assert_string_equal(conf_get(conf, "ssl.ca.location"), "/from/file/ca.pem");
    assert_string_equal(conf_get(conf, "sasl.username"), "env-user");
    assert_string_equal(conf_get(conf, "socket.keepalive.enable"), "true");
    rd_kafka_conf_destroy(conf);
    phx_config_free(opts, sizeof(opts) / sizeof(opts[0]), &cfg);
    unlink(path);
    clear_kafka_env();
}

/* What librdkafka refuses is refused, naming the variable, at start and by the checker. */
static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *env, *value, *want;
    } bad[] = {
        {"PHX_KAFKA_CONF_sasl_user", "phoenix", "sasl.user"},
        {"PHX_KAFKA_CONF_security_protocol", "tls", "security.protocol"},
        {"PHX_KAFKA_CONF_enable_ssl_certificate_verification", "perhaps", "Expected bool"},
        {"PHX_KAFKA_CONF_no_such_thing_FILE", "/tmp/x", "no.such.thing"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        clear_kafka_env();
        setenv(bad[i].env, bad[i].value, 1);
        char e[512];
        if (phx_kafka_conf_check(bad[i].env, bad[i].value, e, sizeof(e)) != -1)
            fail_msg("check of %s=%s passed", bad[i].env, bad[i].value);
        if (!strstr(e, bad[i].env) || !strstr(e, bad[i].want))
            fail_msg("check of %s=%s: %s", bad[i].env, bad[i].value, e);
        if (strstr(bad[i].env, "_FILE"))
            continue; /* the file itself does not exist: phx_kafka_conf fails reading it */
        phx_err err;
        assert_null(phx_kafka_conf("k:9093", &err));
        if (!strstr(err.message, bad[i].env))
            fail_msg("phx_kafka_conf with %s=%s: %s", bad[i].env, bad[i].value, err.message);
    }
    clear_kafka_env();
}

/* A reader (phx-bench's and `phx submit --wait`'s reply reader) takes fetch.wait.max.ms from
 * the environment like every other consumer; it used to force 20 ms over it, which the dev
 * broker turned into 0-20 ms on every reply phx-bench measured. */
static void test_reader_fetch_wait(void **state)
{
    (void)state;
    clear_kafka_env();
    phx_err err;
    rd_kafka_conf_t *conf = phx_kafka_reader_conf("k:9093", "g", &err);
    if (!conf)
        fail_msg("phx_kafka_reader_conf: %s", err.message);
    assert_string_equal(conf_get(conf, "fetch.wait.max.ms"), "20");
    assert_string_equal(conf_get(conf, "group.id"), "g");
    assert_string_equal(conf_get(conf, "enable.auto.commit"), "false");
    rd_kafka_conf_destroy(conf);
    setenv("PHX_KAFKA_CONF_fetch_wait_max_ms", "2", 1);
    conf = phx_kafka_reader_conf("k:9093", "g", &err);
    if (!conf)
        fail_msg("phx_kafka_reader_conf: %s", err.message);
    assert_string_equal(conf_get(conf, "fetch.wait.max.ms"), "2");
    rd_kafka_conf_destroy(conf);
    clear_kafka_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_security_env),      cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_config_file),       cmocka_unit_test(test_refused),
        cmocka_unit_test(test_reader_fetch_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
