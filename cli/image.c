/* Images for the foolc command: an RGB canvas with tiles of images, magnified
 * perturbations and captions (a built-in 5x7 bitmap font), written as PNG through libpng. */
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

/* A 5x7 bitmap font: per glyph seven rows of five bits, the leftmost pixel in bit 4.
 * Letters are capitals (lower case is drawn as upper case); anything else is '?'. */
static const struct { char c; unsigned char row[7]; } k_font[] = {
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}},
    {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}},
    {'|', {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'\'', {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
};

static const unsigned char *glyph(char c)
{
    size_t n = sizeof k_font / sizeof k_font[0];
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    for (size_t i = 0; i < n; i++)
        if (k_font[i].c == c) return k_font[i].row;
    return k_font[n - 1].row;
}

int cli_text_width(const char *s)
{
    size_t n = strlen(s);
    return n ? (int)n * CLI_GLYPH_ADVANCE - 1 : 0;
}

void cli_canvas_text(cli_canvas *cv, int x0, int y0, const char *s, const unsigned char rgb[3])
{
    for (int x = x0; *s; s++, x += CLI_GLYPH_ADVANCE) {
        const unsigned char *g = glyph(*s);
        for (int y = 0; y < 7; y++)
            for (int k = 0; k < 5; k++) {
                int px = x + k, py = y0 + y;
                if (!(g[y] >> (4 - k) & 1) || px < 0 || py < 0 || px >= cv->w || py >= cv->h)
                    continue;
                memcpy(cv->rgb + ((size_t)py * cv->w + px) * 3, rgb, 3);
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
