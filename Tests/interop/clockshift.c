/* A wall clock shifted by a number of milliseconds, for one process (LD_PRELOAD).
 *
 * The skew tests run a real aerocache-node whose wall clock is minutes off, and move it while
 * the node runs. libfaketime cannot do it: it allocates while it initialises, and the node's
 * allocator (jemalloc) reads the clock while it initialises, so the two recurse and the node
 * hangs at start. This shim allocates nothing: it asks the kernel for the time and adds the
 * shift to the wall clocks only (CLOCK_REALTIME and its coarse variant, gettimeofday, time);
 * monotonic clocks stay true.
 *
 * The file named by AEROCACHE_CLOCK_SHIFT_FILE holds the shift in milliseconds and, optionally,
 * a rate ("300000" or "0 2"); it is read again at most every 100 ms, so a test can jump the
 * clock or make it run fast. From the moment a rate other than 1 is read, the wall clock runs
 * at that many times real speed (the time since then is added again, times rate - 1); a new
 * rate starts from where the clock stands.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The node reads the clock from many threads: the state below changes under a spin lock (no
 * allocation, no libc lock), so no reader sees a new rate with an old start. */
static volatile char state_lock;
static long long current_shift_ms;
static long long next_read_ns;
/* The rate, and the monotonic time from which it runs (with the drift gathered before). */
static double current_rate = 1.0;
static long long rate_since_ns;
static long long drift_before_ns;

static long long monotonic_ns(void) {
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Reads the file again (the caller holds the lock). */
static void read_shift_file(long long now) {
    next_read_ns = now + 100000000LL;
    const char *path = getenv("AEROCACHE_CLOCK_SHIFT_FILE");
    if (!path) return;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    if (fd < 0) return;
    char text[32];
    long count = (long)syscall(SYS_read, fd, text, sizeof text - 1);
    syscall(SYS_close, fd);
    if (count <= 0) return;
    text[count] = 0;
    char *rest;
    current_shift_ms = strtoll(text, &rest, 10);
    double rate = strtod(rest, &rest);
    if (rate <= 0) rate = 1.0;
    if (rate != current_rate) {
        drift_before_ns += (long long)((current_rate - 1.0) * (double)(now - rate_since_ns));
        rate_since_ns = now;
        current_rate = rate;
    }
}

/* What to add to the true wall clock now, in nanoseconds: the shift plus the rate's drift. */
static long long offset_ns(void) {
    while (__atomic_test_and_set(&state_lock, __ATOMIC_ACQUIRE)) syscall(SYS_sched_yield);
    long long now = monotonic_ns();  /* read under the lock: never before the rate's start */
    if (now >= next_read_ns) read_shift_file(now);
    long long offset = current_shift_ms * 1000000LL + drift_before_ns;
    if (current_rate != 1.0) offset += (long long)((current_rate - 1.0) * (double)(now - rate_since_ns));
    __atomic_clear(&state_lock, __ATOMIC_RELEASE);
    return offset;
}

static void shift(struct timespec *ts) {
    long long total_ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset_ns();
    ts->tv_sec = total_ns / 1000000000LL;
    ts->tv_nsec = total_ns % 1000000000LL;
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    int result = (int)syscall(SYS_clock_gettime, clock, ts);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) shift(ts);
    return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int result = clock_gettime(CLOCK_REALTIME, &ts);
    if (result == 0 && tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    (void)tz;
    return result;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
