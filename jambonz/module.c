#include "jambonz/module.h"
#include "server/worker.h"

/* handlers/routes.c lists jambonz second among the worker modules */
#define JAMBONZ_MOD 1

int jambonz_start(worker_t *w, void **state)
{
    *state = jrest_new(&w->loop, w->curl, &w->app->cfg);
    return w->app->cfg.jambonz_api_base != NULL && *state == NULL ? -1 : 0;
}

void jambonz_release(worker_t *w, void *state)
{
    (void)w;
    jrest_free(state); /* pending operations end with result.cancelled */
}

jrest_t *jambonz_rest(worker_t *w)
{
    return w->mod[JAMBONZ_MOD];
}
