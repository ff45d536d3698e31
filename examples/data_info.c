/* data_info: loads the Fashion-MNIST test split, prints its shape and how many images each
 * class has, writes the first 10 images and labels to an NPZ, reads the file back (as an
 * archive and as a data set) and checks that nothing changed. Exits non-zero on failure. */
#include <foolc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, foolc_status st)
{
    fprintf(stderr, "data_info: %s: %s: %s\n", what, foolc_status_str(st), foolc_errmsg());
    return EXIT_FAILURE;
}

/* Reads path back with the NPZ API and compares x and y with the first k samples of d. */
static int check_archive(const char *path, const foolc_data *d, int32_t k)
{
    foolc_npz *z;
    foolc_status st = foolc_npz_read(path, &z);
    if (st != FOOLC_OK) return fail("npz_read", st);
    const foolc_array *x = foolc_npz_get(z, "x"), *y = foolc_npz_get(z, "y");
    size_t per = (size_t)d->shape.c * (size_t)d->shape.h * (size_t)d->shape.w;
    int ok = x && y && x->dtype == FOOLC_F32 && x->ndim == 4 && x->shape[0] == k &&
             x->shape[1] == d->shape.c && x->shape[2] == d->shape.h &&
             x->shape[3] == d->shape.w && y->dtype == FOOLC_I32 && y->ndim == 1 &&
             y->shape[0] == k && memcmp(x->data, d->x, (size_t)k * per * sizeof(float)) == 0 &&
             memcmp(y->data, d->y, (size_t)k * sizeof(int32_t)) == 0;
    foolc_npz_free(z);
    if (!ok) {
        fprintf(stderr, "data_info: %s does not hold what was written\n", path);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

/* Loads path as a data set (an .npz with "x" and "y") and compares it too. */
static int check_dataset(const char *path, const foolc_data *d, int32_t k)
{
    foolc_data r;
    foolc_status st = foolc_data_load(path, NULL, &r);
    if (st != FOOLC_OK) return fail("data_load of the archive", st);
    size_t per = (size_t)d->shape.c * (size_t)d->shape.h * (size_t)d->shape.w;
    int ok = r.shape.n == k && r.shape.c == d->shape.c && r.shape.h == d->shape.h &&
             r.shape.w == d->shape.w && memcmp(r.x, d->x, (size_t)k * per * sizeof(float)) == 0 &&
             memcmp(r.y, d->y, (size_t)k * sizeof(int32_t)) == 0;
    foolc_data_free(&r);
    if (!ok) {
        fprintf(stderr, "data_info: %s loads as a different data set\n", path);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

int main(void)
{
    foolc_data d;
    foolc_status st = foolc_data_load("fashion-mnist", "test", &d);
    if (st != FOOLC_OK) return fail("data_load", st);
    printf("fashion-mnist test: %d images of %dx%dx%d (NCHW float32 in [0, 1]), %d classes\n",
           d.shape.n, d.shape.c, d.shape.h, d.shape.w, d.n_classes);
    int32_t *count = calloc((size_t)d.n_classes, sizeof *count);
    if (!count) {
        foolc_data_free(&d);
        return EXIT_FAILURE;
    }
    for (int32_t i = 0; i < d.shape.n; i++) count[d.y[i]]++;
    printf("images per class:");
    for (int32_t c = 0; c < d.n_classes; c++) printf(" %d:%d", c, count[c]);
    printf("\n");
    free(count);

    /* The first 10 images and labels as an NPZ that numpy.load reads too. */
    int32_t k = d.shape.n < 10 ? d.shape.n : 10;
    foolc_array x = { FOOLC_F32, 4, { k, d.shape.c, d.shape.h, d.shape.w }, d.x };
    foolc_array y = { FOOLC_I32, 1, { k }, d.y };
    char path[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/foolc_data_info_%ld.npz", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    foolc_npz *z;
    int rc = EXIT_FAILURE;
    if ((st = foolc_npz_new(&z)) != FOOLC_OK) {
        rc = fail("npz_new", st);
    } else {
        if ((st = foolc_npz_add(z, "x", &x)) != FOOLC_OK ||
            (st = foolc_npz_add(z, "y", &y)) != FOOLC_OK)
            rc = fail("npz_add", st);
        else if ((st = foolc_npz_write(z, path, 1)) != FOOLC_OK)
            rc = fail("npz_write", st);
        else
            rc = EXIT_SUCCESS;
        foolc_npz_free(z);
    }
    if (rc == EXIT_SUCCESS) rc = check_archive(path, &d, k);
    if (rc == EXIT_SUCCESS) rc = check_dataset(path, &d, k);
    if (rc == EXIT_SUCCESS) printf("wrote %s with %d images and read it back: identical\n",
                                   path, k);
    remove(path);
    foolc_data_free(&d);
    return rc;
}
