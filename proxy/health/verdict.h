/* health verdict — the rise/fall rule, pure: feed probe results, learn when the
 * backend's state flips. Kept apart from the probes so unit tests drive it directly. */
#ifndef FERRY_HEALTH_VERDICT_H
#define FERRY_HEALTH_VERDICT_H

#include <stdbool.h>

struct health_run {
    bool up;            /* the state the last result was judged against */
    unsigned streak;    /* consecutive results that contradict `up` */
};

enum health_change { HEALTH_SAME, HEALTH_WENT_UP, HEALTH_WENT_DOWN };

/* `rise` consecutive successes bring a down backend up; `fall` consecutive failures
 * take an up backend down. A result that agrees with the state resets the streak.
 * `up_now` is the backend's state as everyone sees it now: when something else (a
 * passive check) changed it since the last result, the streak starts over. */
enum health_change health_observe(struct health_run *run, bool up_now, bool ok, unsigned rise,
                                  unsigned fall);

#endif
