/* Scratch memory for one call, carved out of one allocation: a function lists its parts
 * once, in a layout pass that runs twice, first to add up their sizes, then (after
 * foolc__arena_alloc) to hand out the pointers, each part aligned to FOOLC__ARENA_ALIGN
 * bytes. One malloc, one free, no hand-computed offsets or alignment:
 *
 *     foolc__arena ar = {0};
 *     float *xs; double *lo; int32_t *act;
 *     for (int pass = 0; pass < 2; pass++) {
 *         xs = foolc__arena_take(&ar, m * d, sizeof *xs);
 *         lo = foolc__arena_take(&ar, m, sizeof *lo);
 *         act = foolc__arena_take(&ar, m, sizeof *act);
 *         if (pass == 0 && foolc__arena_alloc(&ar, "my buffers") < 0) return FOOLC_E_NOMEM;
 *     }
 *     ...
 *     foolc__arena_free(&ar);
 */
#ifndef FOOLC_ARENA_H
#define FOOLC_ARENA_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define FOOLC__ARENA_ALIGN 64

typedef struct foolc__arena {
    void *raw;       /* the allocation */
    char *mem;       /* its first aligned byte; NULL while sizes are added up */
    size_t size;     /* bytes the parts need (SIZE_MAX on overflow) */
    size_t used;     /* bytes handed out */
} foolc__arena;

/* A part of n elements of elem bytes: NULL in the sizing pass, then its memory. */
static inline void *foolc__arena_take(foolc__arena *a, size_t n, size_t elem)
{
    size_t bytes = n && elem > SIZE_MAX / n ? SIZE_MAX : n * elem;
    size_t need = bytes > SIZE_MAX - (FOOLC__ARENA_ALIGN - 1)
                      ? SIZE_MAX
                      : (bytes + FOOLC__ARENA_ALIGN - 1) & ~(size_t)(FOOLC__ARENA_ALIGN - 1);
    if (!a->mem) {
        a->size = need > SIZE_MAX - a->size ? SIZE_MAX : a->size + need;
        return NULL;
    }
    if (need > a->size - a->used) return NULL;   /* a layout that changed between passes */
    void *p = a->mem + a->used;
    a->used += need;
    return p;
}

/* Allocates what the sizing pass added up (FOOLC_E_NOMEM naming `what` on failure). */
static inline foolc_status foolc__arena_alloc(foolc__arena *a, const char *what)
{
    if (a->size > SIZE_MAX - FOOLC__ARENA_ALIGN) return foolc__nomem(what);
    a->raw = foolc__malloc(a->size + FOOLC__ARENA_ALIGN);
    if (!a->raw) return foolc__nomem(what);
    uintptr_t p = (uintptr_t)a->raw;
    a->mem = (char *)a->raw + ((FOOLC__ARENA_ALIGN - p % FOOLC__ARENA_ALIGN) % FOOLC__ARENA_ALIGN);
    a->used = 0;
    return FOOLC_OK;
}

static inline void foolc__arena_free(foolc__arena *a)
{
    foolc__free(a->raw);
    a->raw = NULL;
    a->mem = NULL;
    a->size = a->used = 0;
}

#endif
