/*
 * module: jambonz on the worker's loop. The webhooks and the listen socket need nothing that
 * lives on; the REST API client (jambonz/rest.h) does: one per worker, made when the worker
 * starts and freed before its curl multi handle.
 */
#ifndef SB_JAMBONZ_MODULE_H
#define SB_JAMBONZ_MODULE_H

#include "jambonz/rest.h"

struct worker;

/* worker_module_t's start and release (handlers/routes.c lists the module). */
int jambonz_start(struct worker *w, void **state);
void jambonz_release(struct worker *w, void *state);

/* The worker's REST client; NULL when JAMBONZ_API_BASE is unset. Borrowed. */
jrest_t *jambonz_rest(struct worker *w);

#endif
