/* ferry — command line: run a config, check one, talk to a running ferry (reload,
 * status, upgrade), or say what we are. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/thread.h>

#include "cli/cli.h"
#include "config/config.h"
#include "core/daemon.h"
#include "core/log.h"

/* The development tree's config, else the installed one. */
static const char *const default_configs[] = { "config/ferry.json", FERRY_SYSCONFDIR "/ferry/ferry.json" };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ferry [-c FILE]             run with FILE (default: %s if it exists, else %s)\n"
            "       ferry -t [-c FILE] [--diff] check FILE: print \"ok\" or every error; --diff:\n"
            "                                   against the running ferry, and what a reload changes\n"
            "       ferry reload [-c FILE]      reload the running ferry: print the errors, or the\n"
            "                                   changes once the new generation serves\n"
            "       ferry status [-c FILE]      the running ferry's state\n"
            "       ferry upgrade [-c FILE]     start the new binary in its place (as SIGUSR2)\n"
            "       ferry --version | --help\n"
            "Commands that talk to a running ferry find its admin API in FILE; they exit 0 only\n"
            "on success, 1 when refused or failed, 3 when no ferry answers.\n",
            default_configs[0], default_configs[1]);
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
    signal(SIGUSR2, SIG_IGN);
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
        { "diff", no_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL;
    bool check_only = false, diff = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:th", options, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': check_only = true; break;
        case 'd': diff = true; break;
        case 'V': printf("ferry %s\n", FERRY_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    /* getopt moved the operands after the options: ferry reload -c FILE works too. */
    const char *command = optind < argc ? argv[optind++] : NULL;
    if (optind < argc || (diff && !check_only) || (command && check_only)) {
        usage(stderr);
        return 1;
    }
    for (size_t i = 0; !path && i < sizeof default_configs / sizeof default_configs[0]; i++)
        if (access(default_configs[i], R_OK) == 0)
            path = default_configs[i];
    if (!path) {
        fprintf(stderr, "ferry: no -c FILE given, and neither %s nor %s exists\n",
                default_configs[0], default_configs[1]);
        usage(stderr);
        return 1;
    }
    if (command) {
        static const struct { const char *name; int (*run)(const char *); } commands[] = {
            { "reload", cli_reload }, { "status", cli_status }, { "upgrade", cli_upgrade },
        };
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(command, commands[i].name) == 0)
                return commands[i].run(path);
        fprintf(stderr, "ferry: unknown command \"%s\"\n", command);
        usage(stderr);
        return 1;
    }
    if (check_only)
        return diff ? cli_check_diff(path) : daemon_check_config(path, NULL);
    return run(path);
}
