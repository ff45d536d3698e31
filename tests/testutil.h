/* Small helpers shared by the Check suites. */
#ifndef FOOLC_TESTUTIL_H
#define FOOLC_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "foolc.h"

/* Asserts a status and prints the library's message when it differs. */
#define ck_status(expr, want) do { \
        foolc_status got_ = (expr); \
        ck_assert_msg(got_ == (want), "%s -> %d (%s) want %d; msg: %s", #expr, (int)got_, \
                      foolc_status_str(got_), (int)(want), foolc_errmsg()); \
    } while (0)
#define ck_ok(expr) ck_status(expr, FOOLC_OK)

/* A temporary file name under $TMPDIR (or /tmp), unique to this process and tag. */
static inline void tu_tmpname(char *buf, size_t len, const char *tag)
{
    const char *d = getenv("TMPDIR");
    static unsigned k;
    snprintf(buf, len, "%s/foolc_test_%ld_%u_%s", d ? d : "/tmp", (long)getpid(), k++, tag);
}

#endif
