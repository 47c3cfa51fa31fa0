/* faultinject — an LD_PRELOAD library that makes chosen calls fail, or hold a thread
 * still, so that tests reach error paths and interleavings a healthy system never
 * takes. Built as $FERRY_BUILD/tests/libfaultinject.so; nothing in it is active unless
 * its environment variable is set.
 *
 *   FERRY_FAULT_PTHREAD_CREATE_FAIL_AT=N
 *       The Nth pthread_create() of the process (counting from 1) fails with EAGAIN.
 *   FERRY_FAULT_PTHREAD_CREATE_GATE=PATH
 *       The failing pthread_create() first waits while PATH exists, so that a test
 *       can set the scene (connect clients, say) before the failure happens.
 *   FERRY_FAULT_EPOLL_WAIT_GATE=NAME=PATH[,NAME=PATH...]
 *       A thread named NAME (pthread_setname_np) waits while PATH exists, both before
 *       it goes to sleep in epoll_wait() and after it wakes up. Creating PATH freezes
 *       that event loop at its next wake-up, before it handles what woke it; removing
 *       PATH lets it go on. A thread held before the call is no epoll waiter, so the
 *       kernel passes it over for EPOLLEXCLUSIVE wake-ups.
 *
 * While a thread is held at a gate, PATH.held exists: a test polls for it to know
 * that the thread got there. Every wait gives up after GATE_LIMIT_S seconds, so a
 * broken test cannot hang.
 *
 * Use: LD_PRELOAD=.../libfaultinject.so, and in a sanitizer build also
 * ASAN_OPTIONS=verify_asan_link_order=0 (this library is loaded before ASan's
 * runtime, which is harmless here since it is not instrumented). Add a fault by
 * wrapping one more function the same way: look the real one up with
 * dlsym(RTLD_NEXT), act only when its variable is set, keep errno as the real call
 * left it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

enum { GATE_LIMIT_S = 60, GATE_POLL_MS = 1, MAX_GATES = 8 };

struct thread_gate {
    char name[16];          /* the kernel's limit for a thread name */
    char path[256];
};

static struct {
    int (*pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    long create_fail_at;                /* 0: off */
    const char *create_gate;            /* NULL: none */
    struct thread_gate gates[MAX_GATES];
    size_t n_gates;
} fault;

static _Atomic long creates;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void parse_gates(const char *spec)
{
    char *copy = strdup(spec);
    char *save = NULL;
    for (char *item = copy ? strtok_r(copy, ",", &save) : NULL;
         item && fault.n_gates < MAX_GATES; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq)
            continue;
        *eq = '\0';
        struct thread_gate *g = &fault.gates[fault.n_gates++];
        snprintf(g->name, sizeof g->name, "%s", item);
        snprintf(g->path, sizeof g->path, "%s", eq + 1);
    }
    free(copy);
}

static void init(void)
{
    fault.pthread_create = dlsym(RTLD_NEXT, "pthread_create");
    fault.epoll_wait = dlsym(RTLD_NEXT, "epoll_wait");
    const char *at = getenv("FERRY_FAULT_PTHREAD_CREATE_FAIL_AT");
    /* A test knob that ferrytest.py sets; anything but a number means 0, off.
     * NOLINTNEXTLINE(cert-err34-c) */
    fault.create_fail_at = at ? atol(at) : 0;
    fault.create_gate = getenv("FERRY_FAULT_PTHREAD_CREATE_GATE");
    const char *gates = getenv("FERRY_FAULT_EPOLL_WAIT_GATE");
    if (gates)
        parse_gates(gates);
}

/* Waits while path exists (at most GATE_LIMIT_S), with path.held present meanwhile;
 * errno is left as it was. */
static void wait_gate(const char *path)
{
    int saved = errno;
    if (access(path, F_OK) == 0) {
        char held[300];
        snprintf(held, sizeof held, "%s.held", path);
        int fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        struct timespec step = { 0, GATE_POLL_MS * 1000000L };
        for (long waited_ms = 0; waited_ms < GATE_LIMIT_S * 1000L && access(path, F_OK) == 0;
             waited_ms += GATE_POLL_MS)
            nanosleep(&step, NULL);
        if (fd >= 0) {
            close(fd);
            unlink(held);
        }
    }
    errno = saved;
}

static const char *gate_of_this_thread(void)
{
    if (fault.n_gates == 0)
        return NULL;
    char name[16] = "";
    prctl(PR_GET_NAME, name);
    for (size_t i = 0; i < fault.n_gates; i++)
        if (strcmp(fault.gates[i].name, name) == 0)
            return fault.gates[i].path;
    return NULL;
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
                   void *arg)
{
    pthread_once(&once, init);
    if (fault.create_fail_at > 0 && atomic_fetch_add(&creates, 1) + 1 == fault.create_fail_at) {
        if (fault.create_gate)
            wait_gate(fault.create_gate);
        return EAGAIN;
    }
    return fault.pthread_create(thread, attr, start, arg);
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    pthread_once(&once, init);
    const char *gate = gate_of_this_thread();
    if (gate)
        wait_gate(gate);
    int n = fault.epoll_wait(epfd, events, maxevents, timeout);
    if (gate)
        wait_gate(gate);
    return n;
}
