/* main.c -- phx-freeport: print N free TCP ports on 127.0.0.1 (dev stack and tests only).
 *
 * The kernel picks each port (bind to port 0); all N sockets stay open until every port is
 * chosen, so the N answers are distinct. Another process can still take a port between our
 * close and the caller's bind -- acceptable for a dev stack, which retries on failure. */
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = 1;
    if ((argc > 1 && phx_parse_long(argv[1], 1, 64, &n) < 0) || argc > 2) {
        fprintf(stderr,
                "usage: phx-freeport [N]   (1..64 free loopback TCP ports, one per line)\n");
        return 2;
    }
    int fds[64];
    for (int i = 0; i < n; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        socklen_t len = sizeof(sa);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fds[i], (struct sockaddr *)&sa, &len) < 0) {
            perror("phx-freeport");
            return 1;
        }
        printf("%d\n", ntohs(sa.sin_port));
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}
