/* ferry — command line: run a config, check one, or say what we are. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/thread.h>

#include "config/config.h"
#include "core/daemon.h"
#include "core/log.h"

static const char *const default_config = "config/ferry.json";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ferry [-c FILE]        run with FILE (default: %s)\n"
            "       ferry -t [-c FILE]     check FILE: print \"ok\" or every error\n"
            "       ferry --version | --help\n",
            default_config);
}

static int run(const char *path)
{
    struct config_errors errs = { 0 };
    struct config *cfg = config_load(path, &errs);
    if (!cfg) {
        for (size_t i = 0; i < errs.count; i++)
            log_error("%s", errs.messages[i]);
        config_errors_clear(&errs);
        return 1;
    }
    /* Writes to a closed peer must fail with EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    /* libevent restores these dispositions when the daemon removes its signal events
     * at exit: a late SIGTERM (or SIGHUP) must then not kill a process that is already
     * finishing its graceful stop with exit code 0. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    if (evthread_use_pthreads() < 0) {
        log_error("libevent has no pthreads support");
        config_free(cfg);
        return 1;
    }
    struct daemon *d = daemon_new(cfg);
    if (!d)
        return 1;
    int rc = daemon_run(d);
    daemon_free(d);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "test", no_argument, NULL, 't' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL;
    bool check_only = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:th", options, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': check_only = true; break;
        case 'V': printf("ferry %s\n", FERRY_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 1;
    }
    if (!path) {
        if (access(default_config, R_OK) != 0) {
            fprintf(stderr, "ferry: no -c FILE given and %s does not exist\n", default_config);
            usage(stderr);
            return 1;
        }
        path = default_config;
    }
    return check_only ? daemon_check_config(path) : run(path);
}
