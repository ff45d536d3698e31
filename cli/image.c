/* Images for the foolc command: an RGB canvas with tiles of images and magnified
 * perturbations, written as PNG through libpng. */
#include "cli.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

int cli_canvas_new(cli_canvas *cv, int w, int h)
{
    cv->w = w;
    cv->h = h;
    cv->rgb = malloc((size_t)w * h * 3);
    if (!cv->rgb) return -1;
    memset(cv->rgb, 255, (size_t)w * h * 3);
    return 0;
}

void cli_canvas_free(cli_canvas *cv)
{
    free(cv->rgb);
    cv->rgb = NULL;
}

static unsigned char to8(double v)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (unsigned char)lround(v * 255);
}

void cli_canvas_image(cli_canvas *cv, int x0, int y0, const float *img, foolc_shape s,
                      float lo, float hi, int scale)
{
    size_t plane = (size_t)s.h * s.w;
    for (int y = 0; y < s.h; y++)
        for (int x = 0; x < s.w; x++) {
            unsigned char c[3];
            for (int ch = 0; ch < 3; ch++) {
                float v = img[(size_t)(s.c >= 3 ? ch : 0) * plane + (size_t)y * s.w + x];
                c[ch] = to8(((double)v - lo) / ((double)hi - lo));
            }
            for (int dy = 0; dy < scale; dy++)
                for (int dx = 0; dx < scale; dx++) {
                    int px = x0 + x * scale + dx, py = y0 + y * scale + dy;
                    if (px >= cv->w || py >= cv->h) continue;
                    memcpy(cv->rgb + ((size_t)py * cv->w + px) * 3, c, 3);
                }
        }
}

void cli_canvas_delta(cli_canvas *cv, int x0, int y0, const float *x, const float *adv,
                      foolc_shape s, int scale)
{
    size_t d = (size_t)s.c * s.h * s.w, plane = (size_t)s.h * s.w;
    double m = 0;
    for (size_t i = 0; i < d; i++) m = fmax(m, fabs((double)adv[i] - x[i]));
    for (int y = 0; y < s.h; y++)
        for (int xx = 0; xx < s.w; xx++) {
            double v = 0; /* the channel with the largest magnitude */
            for (int ch = 0; ch < s.c; ch++) {
                size_t q = (size_t)ch * plane + (size_t)y * s.w + xx;
                double dv = (double)adv[q] - x[q];
                if (fabs(dv) > fabs(v)) v = dv;
            }
            v = m > 0 ? v / m : 0;
            unsigned char c[3] = {to8(1 - fmax(0, -v)), to8(1 - fabs(v)), to8(1 - fmax(0, v))};
            for (int dy = 0; dy < scale; dy++)
                for (int dx = 0; dx < scale; dx++) {
                    int px = x0 + xx * scale + dx, py = y0 + y * scale + dy;
                    if (px >= cv->w || py >= cv->h) continue;
                    memcpy(cv->rgb + ((size_t)py * cv->w + px) * 3, c, 3);
                }
        }
}

int cli_canvas_png(const cli_canvas *cv, const char *cmd, const char *flag, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "foolc %s: %s '%s': cannot write: ", cmd, flag, path);
        perror(NULL);
        return CLI_INPUT;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = malloc((size_t)cv->h * sizeof *rows);
    if (!png || !info || !rows || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        free(rows);
        fclose(f);
        fprintf(stderr, "foolc %s: %s '%s': PNG encoding failed\n", cmd, flag, path);
        return CLI_INPUT;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)cv->w, (png_uint_32)cv->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    for (int y = 0; y < cv->h; y++) rows[y] = cv->rgb + (size_t)y * cv->w * 3;
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (fclose(f)) {
        fprintf(stderr, "foolc %s: %s '%s': write failed\n", cmd, flag, path);
        return CLI_INPUT;
    }
    return 0;
}
