/*
 * assets: the dashboard's files (static/), embedded at build time by server/embed_static.cmake.
 * Everything here is read-only and lives as long as the program; nothing is freed.
 */
#ifndef SB_ASSETS_H
#define SB_ASSETS_H

#include <stddef.h>

typedef struct static_asset {
    const char *name; /* file name in static/, e.g. "app.js" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted, ready for the ETag header */
} static_asset_t;

extern const static_asset_t static_assets[];
extern const size_t static_assets_count;
/* a hash of every asset but index.html; index.html's asset URLs carry it */
extern const char static_assets_version[];

/* The asset named exactly name[0..len), or NULL. */
const static_asset_t *assets_find(const char *name, size_t len);

#endif
