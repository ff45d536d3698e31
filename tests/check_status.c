/* Status texts, error messages, versions and the allocation failure hook. */
#include "testutil.h"
#include "internal.h"

#include <limits.h>
#include <string.h>

/* The status codes named in include/foolc/status.h, read from the header itself, so that a
 * code added there is covered here without a change to this test. */
typedef struct named_code { char name[48]; long value; } named_code;

static int read_status_codes(named_code *out, int max)
{
    const char *dir = getenv("FOOLC_SOURCE_DIR");
    char path[512], line[512];
    snprintf(path, sizeof path, "%s/include/foolc/status.h", dir && *dir ? dir : ".");
    FILE *fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "cannot open %s (run the tests from the repository root or set "
                  "FOOLC_SOURCE_DIR)", path);
    int n = 0, in_enum = 0;
    while (fgets(line, sizeof line, fp)) {
        if (!in_enum) { in_enum = strstr(line, "typedef enum foolc_status") != NULL; continue; }
        char *c = strstr(line, "/*");
        if (c) *c = '\0';                       /* comments may mention codes */
        if (strchr(line, '}')) break;
        for (char *p = line; (p = strstr(p, "FOOLC_")) != NULL; ) {
            named_code nc;
            int used = 0;
            if (sscanf(p, "%47[A-Z0-9_] = %ld%n", nc.name, &nc.value, &used) != 2 || !used) {
                p += 6;
                continue;
            }
            ck_assert_int_lt(n, max);
            out[n++] = nc;
            p += used;
        }
    }
    fclose(fp);
    ck_assert_msg(in_enum, "%s: no 'typedef enum foolc_status'", path);
    return n;
}

static const named_code *find_code(const named_code *c, int n, const char *name)
{
    for (int i = 0; i < n; i++) if (strcmp(c[i].name, name) == 0) return &c[i];
    return NULL;
}

/* Every named code has its own text; every value the header does not name (a gap, or
 * either side of the range) reads "unknown status". */
START_TEST(test_status_text)
{
    named_code c[64];
    int n = read_status_codes(c, 64);
    /* The reading agrees with the compiler on the codes this test knows by name. */
    static const struct { const char *name; long value; } k_known[] = {
        {"FOOLC_OK", FOOLC_OK}, {"FOOLC_NOT_FOUND", FOOLC_NOT_FOUND},
        {"FOOLC_E_INVALID", FOOLC_E_INVALID}, {"FOOLC_E_NOMEM", FOOLC_E_NOMEM},
        {"FOOLC_E_INTERNAL", FOOLC_E_INTERNAL},
    };
    for (size_t k = 0; k < sizeof k_known / sizeof k_known[0]; k++) {
        const named_code *nc = find_code(c, n, k_known[k].name);
        ck_assert_msg(nc != NULL, "%s not read from status.h", k_known[k].name);
        ck_assert_int_eq(nc->value, k_known[k].value);
    }
    long lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        if (c[i].value < lo) lo = c[i].value;
        if (c[i].value > hi) hi = c[i].value;
        for (int j = 0; j < i; j++) {
            ck_assert_str_ne(c[i].name, c[j].name);
            ck_assert_msg(c[i].value != c[j].value, "%s and %s are both %ld", c[i].name,
                          c[j].name, c[i].value);
        }
    }
    for (long v = lo - 3; v <= hi + 3; v++) {
        const char *t = foolc_status_str((foolc_status)v);
        ck_assert_ptr_nonnull(t);
        int named = -1;
        for (int i = 0; i < n; i++) if (c[i].value == v) named = i;
        if (named < 0) {
            ck_assert_msg(strcmp(t, "unknown status") == 0, "%ld is not in status.h but reads "
                          "'%s'", v, t);
            continue;
        }
        ck_assert_msg(strcmp(t, "unknown status") != 0 && *t, "%s (%ld) has no text",
                      c[named].name, v);
        for (int i = 0; i < n; i++)
            if (i != named)
                ck_assert_msg(strcmp(t, foolc_status_str((foolc_status)c[i].value)) != 0,
                              "%s and %s read the same", c[named].name, c[i].name);
    }
    ck_assert_str_eq(foolc_status_str((foolc_status)INT_MIN), "unknown status");
    ck_assert_str_eq(foolc_status_str((foolc_status)INT_MAX), "unknown status");
    ck_assert_str_eq(foolc_status_str(FOOLC_E_BUDGET), "query budget exhausted");
}
END_TEST

START_TEST(test_errmsg_names_argument)
{
    foolc_attack *a = NULL;
    ck_status(foolc_attack_new("no-such-attack", &a), FOOLC_E_INVALID);
    ck_assert_ptr_null(a);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "no-such-attack"));
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "fgsm"));   /* lists the known names */
    ck_ok(foolc_attack_new("fgsm", &a));
    ck_status(foolc_attack_set(a, "epsilon", 3e9), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "'epsilon' must be in [0, 1e+09], got 3e+09"));
    ck_status(foolc_attack_set(a, "loss", 1.5), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "whole number"));
    ck_status(foolc_attack_set(a, "epsilom", 0.1), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "unknown key 'epsilom'"));
    ck_status(foolc_attack_set(a, "epsilon", NAN), FOOLC_E_INVALID);
    foolc_attack_free(a);
    foolc_attack_free(NULL);
}
END_TEST

START_TEST(test_version)
{
    ck_assert_int_eq(foolc_version_number(), FOOLC_VERSION_NUMBER);
    ck_assert_str_eq(foolc_version_string(), FOOLC_VERSION_STRING);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", FOOLC_VERSION_MAJOR, FOOLC_VERSION_MINOR,
             FOOLC_VERSION_PATCH);
    ck_assert_str_eq(buf, foolc_version_string());
}
END_TEST

START_TEST(test_alloc_hook)
{
    foolc__alloc_fail_at(2);
    void *p = foolc__malloc(8), *q = foolc__malloc(8), *r = foolc__malloc(8);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(q);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(foolc__alloc_fail_at(0), 3);
    foolc__free(p);
    foolc__free(r);
    ck_assert_ptr_null(foolc__calloc(SIZE_MAX / 2, 4));   /* overflow refused */
}
END_TEST

Suite *foolc_suite_status(void);
Suite *foolc_suite_status(void)
{
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_status_text);
    tcase_add_test(tc, test_errmsg_names_argument);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_alloc_hook);
    suite_add_tcase(s, tc);
    return s;
}
