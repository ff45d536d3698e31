/* Internal helpers shared by every part of the library: allocation through one hook (so
 * tests can fail the n-th allocation), error reporting with a per-thread message, and
 * small numeric utilities. Never installed. */
#ifndef FOOLC_INTERNAL_H
#define FOOLC_INTERNAL_H

#include "foolc.h"

#include <stdarg.h>

/* All library allocations. foolc__malloc(0) returns a valid unique pointer. */
void *foolc__malloc(size_t n);
void *foolc__calloc(size_t count, size_t size); /* overflow-checked */
void *foolc__realloc(void *p, size_t n);
void foolc__free(void *p);
/* Huge pages: FOOLC__HUGE_PAGE bytes. foolc__advise_huge advises [p, p + len) into them
 * (Linux's transparent huge pages, where enabled for advised memory; elsewhere nothing):
 * filling 188 MB in 4 KB pages costs some 46,000 page faults, about 0.6 s on a virtual
 * machine. p should start on a huge page. foolc__malloc_big is foolc__malloc for a large
 * buffer about to be filled whole: from FOOLC__HUGE_PAGE on, aligned and advised; freed with
 * foolc__free. */
#define FOOLC__HUGE_PAGE ((size_t)2 << 20)
void foolc__advise_huge(void *p, size_t len);
void *foolc__malloc_big(size_t n);
/* count*size with overflow check; SIZE_MAX on overflow (so the allocation then fails). */
size_t foolc__mul(size_t count, size_t size);

/* Test hook: make the n-th allocation from now on this thread fail (n >= 1), 0 to disable.
 * Returns the number of allocations this thread made since its last call. */
uint64_t foolc__alloc_fail_at(uint64_t n);
/* Test hook: every allocation of more than bytes on this thread fails (0: no limit, the
 * default). Returns the previous limit. Tests bound a reader's memory with it. */
uint64_t foolc__alloc_limit(uint64_t bytes);

/* Records "fmt ..." as this thread's error message and returns st. */
foolc_status foolc__error(foolc_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prefixes this thread's message with "prefix: " and returns st (for adding context). */
foolc_status foolc__error_prefix(foolc_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Clears this thread's message. */
void foolc__error_clear(void);
/* FOOLC_E_NOMEM with the what in the message. */
foolc_status foolc__nomem(const char *what);

#define FOOLC__CHECK(expr) do { foolc_status st_ = (expr); if (st_ < 0) return st_; } while (0)

#endif
