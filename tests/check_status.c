/* Status texts, error messages, versions and the allocation failure hook. */
#include "testutil.h"
#include "internal.h"

#include <string.h>

START_TEST(test_status_text)
{
    for (int s = -12; s <= 1; s++) {
        const char *t = foolc_status_str((foolc_status)s);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_ne(t, "unknown status");
    }
    ck_assert_str_eq(foolc_status_str((foolc_status)-999), "unknown status");
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

/* Every allocating constructor returns FOOLC_E_NOMEM cleanly at each failing allocation. */
START_TEST(test_alloc_failures)
{
    int saw = 0;
    for (uint64_t n = 1; n < 50; n++) {
        foolc_attack *a = NULL;
        foolc__alloc_fail_at(n);
        foolc_status st = foolc_attack_new("fgsm", &a);
        foolc__alloc_fail_at(0);
        if (st == FOOLC_OK) { foolc_attack_free(a); break; }
        ck_assert_int_eq(st, FOOLC_E_NOMEM);
        ck_assert_ptr_null(a);
        saw++;
    }
    ck_assert_int_ge(saw, 2);
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
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}
