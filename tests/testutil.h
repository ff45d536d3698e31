/* Small helpers shared by the Check suites. */
#ifndef FOOLC_TESTUTIL_H
#define FOOLC_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "foolc.h"

/* Asserts a status and prints the library's message when it differs. */
#define ck_status(expr, want) do { \
        foolc_status got_ = (expr); \
        ck_assert_msg(got_ == (want), "%s -> %d (%s) want %d; msg: %s", #expr, (int)got_, \
                      foolc_status_str(got_), (int)(want), foolc_errmsg()); \
    } while (0)
#define ck_ok(expr) ck_status(expr, FOOLC_OK)

/* Whether a skipped test is a failure: under CI (the environment variable CI set to anything
 * but "", "0", "false" or "no", in any case; CI services set CI=true), where everything the
 * tests need is installed (make deps), a test that cannot run is a broken environment. The
 * same rule as .ci/ci.sh and tests/python/_setup.py. */
static inline int tu_ci(void)
{
    const char *ci = getenv("CI");
    return ci && *ci && strcmp(ci, "0") != 0 && strcasecmp(ci, "false") != 0 &&
           strcasecmp(ci, "no") != 0;
}

/* The test's name from its function's (Check's START_TEST(t) defines t_fn). */
static inline const char *tu_test_name(const char *fn)
{
    static char name[128];
    size_t k = strlen(fn);
    if (k > 3 && strcmp(fn + k - 3, "_fn") == 0) k -= 3;
    snprintf(name, sizeof name, "%.*s", (int)k, fn);
    return name;
}

/* Inside a START_TEST: a test that cannot run here (a data set or a tool is missing) says
 * so, "SKIP: <test>: <why>" on stdout, and returns; under CI it fails instead (libuv's
 * TEST_SKIP). Never count a test that did not run as a pass silently. */
#define FOOLC_SKIP(why) do { \
        const char *why_ = (why); \
        if (tu_ci()) \
            ck_abort_msg("SKIP: %s: %s (a skip is a failure under CI=%s)", \
                         tu_test_name(__func__), why_, getenv("CI")); \
        printf("SKIP: %s: %s\n", tu_test_name(__func__), why_); \
        fflush(stdout); \
        return; \
    } while (0)

/* A temporary file name under $TMPDIR (or /tmp), unique to this process and tag. */
static inline void tu_tmpname(char *buf, size_t len, const char *tag)
{
    const char *d = getenv("TMPDIR");
    static unsigned k;
    snprintf(buf, len, "%s/foolc_test_%ld_%u_%s", d ? d : "/tmp", (long)getpid(), k++, tag);
}

#endif
