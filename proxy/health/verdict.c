#include "health/verdict.h"

enum health_change health_observe(struct health_run *run, bool up_now, bool ok, unsigned rise,
                                  unsigned fall)
{
    if (up_now != run->up) {
        run->up = up_now;
        run->streak = 0;
    }
    if (ok == run->up) {
        run->streak = 0;
        return HEALTH_SAME;
    }
    run->streak++;
    if (run->streak < (run->up ? fall : rise))
        return HEALTH_SAME;
    run->up = ok;
    run->streak = 0;
    return ok ? HEALTH_WENT_UP : HEALTH_WENT_DOWN;
}
