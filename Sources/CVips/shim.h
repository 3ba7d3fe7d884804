// libvips for image transforms. Its API is C-variadic (optional arguments end in NULL), which
// Swift cannot call: these fixed-argument wrappers are the whole surface Swift uses.
#include <vips/vips.h>

static inline int cvips_init(void) {
    if (VIPS_INIT("minibaas")) return -1;
    // Objects are untrusted input: only the loaders libvips considers safe for it.
    vips_block_untrusted_set(TRUE);
    return 0;
}

/// The image's size from its header only (nothing decoded), to refuse oversized sources first.
static inline int cvips_header(const void *buffer, size_t length, int *width, int *height) {
    VipsImage *image = vips_image_new_from_buffer(buffer, length, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    if (image == NULL) return -1;
    *width = vips_image_get_width(image);
    *height = vips_image_get_height(image);
    g_object_unref(image);
    return 0;
}

/// Resizes with libvips' thumbnail (shrink-on-load, then resize): `crop` fills the box and cuts
/// what overflows (cover), `force` stretches to it (fill), neither fits inside it (contain).
static inline int cvips_thumbnail(const void *buffer, size_t length, int width, int height, int crop, int force, VipsImage **out) {
    return vips_thumbnail_buffer((void *)buffer, length, out, width,
                                 "height", height,
                                 "crop", crop ? VIPS_INTERESTING_CENTRE : VIPS_INTERESTING_NONE,
                                 "size", force ? VIPS_SIZE_FORCE : VIPS_SIZE_BOTH,
                                 NULL);
}

/// Encodes as the suffix says (".jpg[Q=80,strip]", ".webp[Q=80]", ".png"); the caller frees
/// the buffer with g_free.
static inline int cvips_save(VipsImage *image, const char *suffix, void **buffer, size_t *length) {
    return vips_image_write_to_buffer(image, suffix, buffer, length, NULL);
}

static inline void cvips_unref(VipsImage *image) { g_object_unref(image); }
static inline void cvips_free(void *buffer) { g_free(buffer); }
static inline const char *cvips_error(void) { return vips_error_buffer(); }
static inline void cvips_clear_error(void) { vips_error_clear(); }
/// The loader libvips picks for these bytes ("jpegload_buffer", "pngload_buffer", …), or NULL.
static inline const char *cvips_loader(const void *buffer, size_t length) { return vips_foreign_find_load_buffer(buffer, length); }
