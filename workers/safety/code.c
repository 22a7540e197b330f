/* code.c -- code risk rules (see code.h).
 *
 * Each rule is a literal on the folded code, optionally with a second literal that must follow
 * within 200 bytes ("curl ... | sh"). The score is the noisy-OR of the rules that fired. */
#include "code.h"

#include <stdlib.h>
#include <string.h>

typedef struct phx_code_rule {
    const char *category;
    double severity;
    const char *lit;
    const char *then; /* NULL, or must follow lit within 200 bytes */
} phx_code_rule;

static const phx_code_rule phx_code_rules[] = {
    {"destructive", 0.95, "rm -rf /", NULL},
    {"destructive", 0.95, "rm -rf ~", NULL},
    {"destructive", 0.95, "rm -rf --no-preserve-root", NULL},
    {"destructive", 0.8, "mkfs", NULL},
    {"destructive", 0.9, "dd if=", "of=/dev/"},
    {"destructive", 0.5, "shutil.rmtree(", NULL},
    {"fork_bomb", 0.95, ":(){ :|:& };:", NULL},
    {"fork_bomb", 0.95, ":(){ :|: & };:", NULL},
    {"fork_bomb", 0.7, "while true", "fork()"},
    {"reverse_shell", 0.95, "/dev/tcp/", NULL},
    {"reverse_shell", 0.95, "nc -e", NULL},
    {"reverse_shell", 0.95, "ncat -e", NULL},
    {"reverse_shell", 0.9, "bash -i", ">&"},
    {"reverse_shell", 0.85, "pty.spawn(", NULL},
    {"reverse_shell", 0.8, "socket.socket(", "dup2("},
    {"download_exec", 0.85, "curl ", "| sh"},
    {"download_exec", 0.85, "curl ", "| bash"},
    {"download_exec", 0.85, "wget ", "| sh"},
    {"download_exec", 0.85, "wget ", "| bash"},
    {"download_exec", 0.8, "base64 -d", "| sh"},
    {"download_exec", 0.8, "base64 --decode", "| sh"},
    {"credential_access", 0.85, "/etc/shadow", NULL},
    {"credential_access", 0.5, "/etc/passwd", NULL},
    {"credential_access", 0.7, "/.ssh/", NULL},
    {"credential_access", 0.8, ".aws/credentials", NULL},
    {"credential_access", 0.6, ".kube/config", NULL},
    {"credential_access", 0.6, "/proc/self/environ", NULL},
    {"credential_access", 0.3, "os.environ", NULL},
    {"metadata_access", 0.9, "169.254.169.254", NULL},
    {"metadata_access", 0.9, "metadata.google.internal", NULL},
    {"metadata_access", 0.9, "fd00:ec2::254", NULL},
    {"privilege", 0.6, "chmod +s", NULL},
    {"privilege", 0.6, "chmod u+s", NULL},
    {"privilege", 0.4, "chmod 777", NULL},
    {"privilege", 0.5, "sudo ", NULL},
    {"privilege", 0.6, "setuid(", NULL},
    {"privilege", 0.6, "ptrace", NULL},
    {"persistence", 0.6, "crontab", NULL},
    {"persistence", 0.6, "/etc/rc.local", NULL},
    {"persistence", 0.6, ".bashrc", NULL},
    {"persistence", 0.6, "systemctl enable", NULL},
    {"crypto_miner", 0.9, "stratum+tcp", NULL},
    {"crypto_miner", 0.9, "xmrig", NULL},
    {"process_exec", 0.3, "subprocess", NULL},
    {"process_exec", 0.35, "os.system(", NULL},
    {"process_exec", 0.35, "os.popen(", NULL},
    {"process_exec", 0.3, "child_process", NULL},
    {"process_exec", 0.3, "runtime.getruntime().exec", NULL},
    {"dynamic_eval", 0.3, "eval(", NULL},
    {"dynamic_eval", 0.3, "exec(", NULL},
    {"dynamic_eval", 0.4, "__import__(", NULL},
    {"dynamic_eval", 0.4, "pickle.loads", NULL},
    {"dynamic_eval", 0.4, "ctypes", NULL},
    {"network", 0.25, "socket.socket(", NULL},
    {"network", 0.2, "requests.post(", NULL},
    {"network", 0.2, "urllib.request", NULL},
};

#define PHX_CODE_NRULES ((int)(sizeof(phx_code_rules) / sizeof(phx_code_rules[0])))

double phx_safety_code_scan(const char *text, size_t len, phx_safety_findings *out)
{
    char *t = malloc(len + 1);
    size_t *map = malloc((len + 1) * sizeof(size_t));
    double keep = 1.0;
    if (!t || !map)
        goto out;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\t' || c == '\n' || c == '\r')
            c = ' ';
        if (c == ' ' && n > 0 && t[n - 1] == ' ')
            continue;
        t[n] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        map[n++] = i;
    }
    t[n] = '\0';
    map[n] = len;
    for (int r = 0; r < PHX_CODE_NRULES; r++) {
        const phx_code_rule *rule = &phx_code_rules[r];
        const char *p = memmem(t, n, rule->lit, strlen(rule->lit));
        if (!p)
            continue;
        size_t s = (size_t)(p - t), e = s + strlen(rule->lit);
        if (rule->then) {
            size_t lim = n - e < 200 ? n - e : 200;
            const char *q = memmem(t + e, lim, rule->then, strlen(rule->then));
            if (!q)
                continue;
            e = (size_t)(q - t) + strlen(rule->then);
        }
        phx_safety_finding *f =
            phx_safety_add(out, "code", rule->category, rule->severity, map[s], map[e]);
        if (f)
            phx_safety_evidence(f->evidence, sizeof(f->evidence), t + s, e - s);
        keep *= 1.0 - rule->severity;
    }
out:
    free(t);
    free(map);
    return 1.0 - keep;
}
