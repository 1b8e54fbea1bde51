#include "server/assets.h"

#include <string.h>

const static_asset_t *assets_find(const char *name, size_t len)
{
    for (size_t i = 0; i < static_assets_count; i++)
        if (strlen(static_assets[i].name) == len && memcmp(static_assets[i].name, name, len) == 0)
            return &static_assets[i];
    return NULL;
}
