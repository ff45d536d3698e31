/* Status texts, the per-thread error message, versions, and the one allocation hook that
 * every allocation of the library goes through. */
#define _DEFAULT_SOURCE 1   /* madvise and MADV_HUGEPAGE (foolc__advise_huge), where there */

#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

static _Thread_local char t_msg[1024];
/* The allocation hook's state is per thread: handles used in parallel on several threads
 * (the library allows it) never race on it, and a test's "n-th allocation" counts the
 * allocations of its own thread only. */
static _Thread_local uint64_t t_alloc_count, t_alloc_fail_at, t_alloc_limit;

const char *foolc_status_str(foolc_status s)
{
    switch (s) {
    case FOOLC_OK: return "ok";
    case FOOLC_NOT_FOUND: return "no adversarial found for some samples";
    case FOOLC_E_INVALID: return "invalid argument";
    case FOOLC_E_NOMEM: return "out of memory";
    case FOOLC_E_UNSUPPORTED: return "not supported (by the model, the engine or this build)";
    case FOOLC_E_ORACLE: return "a model callback failed";
    case FOOLC_E_BACKEND: return "back end (oneDNN) failure";
    case FOOLC_E_VERSION: return "unsupported version";
    case FOOLC_E_CANCELLED: return "cancelled";
    case FOOLC_E_BUDGET: return "query budget exhausted";
    case FOOLC_E_NONFINITE: return "the model returned NaN or Inf";
    case FOOLC_E_IO: return "input/output error";
    case FOOLC_E_FORMAT: return "malformed file";
    case FOOLC_E_INTERNAL: return "internal error (a bug in libfoolc)";
    }
    return "unknown status";
}

const char *foolc_errmsg(void) { return t_msg; }

void foolc__error_clear(void) { t_msg[0] = '\0'; }

foolc_status foolc__error(foolc_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_msg, sizeof t_msg, fmt, ap);
    va_end(ap);
    return st;
}

foolc_status foolc__error_prefix(foolc_status st, const char *fmt, ...)
{
    char prefix[256], old[sizeof t_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, t_msg, sizeof old);
    size_t k = strlen(prefix);
    if (k > sizeof t_msg - 3) k = sizeof t_msg - 3;
    memcpy(t_msg, prefix, k);
    t_msg[k] = ':';
    t_msg[k + 1] = ' ';
    size_t rest = strlen(old);
    if (rest > sizeof t_msg - k - 3) rest = sizeof t_msg - k - 3;
    memcpy(t_msg + k + 2, old, rest);
    t_msg[k + 2 + rest] = '\0';
    return st;
}

foolc_status foolc__nomem(const char *what)
{
    return foolc__error(FOOLC_E_NOMEM, "out of memory allocating %s", what);
}

int foolc_version_number(void) { return FOOLC_VERSION_NUMBER; }
const char *foolc_version_string(void) { return FOOLC_VERSION_STRING; }

uint64_t foolc__alloc_fail_at(uint64_t n)
{
    uint64_t made = t_alloc_count;
    t_alloc_count = 0;
    t_alloc_fail_at = n;
    return made;
}

uint64_t foolc__alloc_limit(uint64_t bytes)
{
    uint64_t old = t_alloc_limit;
    t_alloc_limit = bytes;
    return old;
}

static int alloc_should_fail(size_t n)
{
    t_alloc_count++;
    if (t_alloc_limit != 0 && n > t_alloc_limit) return 1;
    return t_alloc_fail_at != 0 && t_alloc_count == t_alloc_fail_at;
}

size_t foolc__mul(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size) return SIZE_MAX;
    return count * size;
}

void *foolc__malloc(size_t n)
{
    if (alloc_should_fail(n) || n == SIZE_MAX) return NULL;
    return malloc(n ? n : 1);
}

void *foolc__calloc(size_t count, size_t size)
{
    size_t n = foolc__mul(count, size);
    if (alloc_should_fail(n) || n == SIZE_MAX) return NULL;
    return calloc(n ? n : 1, 1);
}

void *foolc__realloc(void *p, size_t n)
{
    if (alloc_should_fail(n) || n == SIZE_MAX) return NULL;
    return realloc(p, n ? n : 1);
}

void foolc__advise_huge(void *p, size_t len)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) (void)madvise(p, len, MADV_HUGEPAGE);   /* advice: ignored where refused */
#else
    (void)p;
    (void)len;
#endif
}

void *foolc__malloc_big(size_t n)
{
    if (n < FOOLC__HUGE_PAGE) return foolc__malloc(n);
    if (alloc_should_fail(n) || n > SIZE_MAX - FOOLC__HUGE_PAGE) return NULL;
    size_t len = (n + FOOLC__HUGE_PAGE - 1) / FOOLC__HUGE_PAGE * FOOLC__HUGE_PAGE;
    void *p = aligned_alloc(FOOLC__HUGE_PAGE, len);
    foolc__advise_huge(p, len);
    return p;
}

void foolc__free(void *p) { free(p); }

void foolc_free(void *p) { foolc__free(p); }
