/* main.c -- phx-freeport: print N free TCP ports on 127.0.0.1 (dev stack and tests only).
 *
 * Ports come from below the kernel's ephemeral range (net.ipv4.ip_local_port_range), chosen at
 * random and checked by binding them; all N sockets stay open until every port is chosen, so
 * the N answers are distinct. Why not bind to port 0: the kernel then hands out an ephemeral
 * port, the very range every outgoing connection (a Kafka or Redis client) also draws from, so
 * on a busy machine some client's connect took the port in the seconds between our answer and
 * the caller's bind (a test stack's ingress failed to listen that way). Below the range only
 * another explicit bind can take it, and those are rare and random. */
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The lowest ephemeral port (32768 when the file cannot be read: Linux's default). */
static long freeport_ephemeral_low(void)
{
    char line[64];
    long lo = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fgets(line, sizeof(line), f)) {
            char *end;
            long v = strtol(line, &end, 10);
            if (end != line && v > 0 && v < 65536)
                lo = v;
        }
        fclose(f);
    }
    return lo;
}

/* Bind a loopback socket to port (0 = any); the socket, or -1. */
static int freeport_bind(int port, int *got)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        close(fd);
        return -1;
    }
    *got = ntohs(sa.sin_port);
    return fd;
}

int main(int argc, char **argv)
{
    long n = 1;
    if ((argc > 1 && phx_parse_long(argv[1], 1, 64, &n) < 0) || argc > 2) {
        fprintf(stderr,
                "usage: phx-freeport [N]   (1..64 free loopback TCP ports, one per line)\n");
        return 2;
    }
    int fds[64];
    /* [10000, the ephemeral range): clear of the usual well-known service ports. When the
     * range is configured so low that this is too small, fall back to the kernel's choice. */
    long lo = 10000, span = freeport_ephemeral_low() - lo;
    unsigned seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    for (int i = 0; i < n; i++) {
        int port = 0;
        fds[i] = -1;
        for (int tries = 0; span >= 1000 && tries < 200 && fds[i] < 0; tries++)
            fds[i] = freeport_bind((int)(lo + rand_r(&seed) % span), &port);
        if (fds[i] < 0)
            fds[i] = freeport_bind(0, &port);
        if (fds[i] < 0) {
            perror("phx-freeport");
            return 1;
        }
        printf("%d\n", port);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}
