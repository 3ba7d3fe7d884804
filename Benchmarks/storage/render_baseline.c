// The in-process baseline for the render benchmark: the same libvips call a render makes
// (thumbnail from a JPEG in memory to 500x500, cover, WebP Q=80), timed N times; prints the
// median in milliseconds. Benchmark-only.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <vips/vips.h>

static int compare(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    if (argc < 3 || VIPS_INIT(argv[0])) return 2;
    int runs = atoi(argv[2]);
    gchar *data; gsize length;
    if (!g_file_get_contents(argv[1], &data, &length, NULL)) return 2;
    double *times = calloc(runs, sizeof(double));
    for (int i = 0; i < runs; i++) {
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        VipsImage *image;
        if (vips_thumbnail_buffer(data, length, &image, 500, "height", 500, "crop", VIPS_INTERESTING_CENTRE, NULL)) return 1;
        void *out; size_t size;
        if (vips_image_write_to_buffer(image, ".webp[Q=80,strip]", &out, &size, NULL)) return 1;
        g_free(out);
        g_object_unref(image);
        clock_gettime(CLOCK_MONOTONIC, &end);
        times[i] = (end.tv_sec - start.tv_sec) * 1e3 + (end.tv_nsec - start.tv_nsec) / 1e6;
    }
    qsort(times, runs, sizeof(double), compare);
    printf("%.3f\n", times[runs / 2]);
    return 0;
}
