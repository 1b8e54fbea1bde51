/*
 * twiml_impl: what twiml.c (the writer: document, nesting, escaping, size
 * limit) and twiml_verbs.c (the vocabulary: each verb's attributes and text)
 * share. Not a public interface: other modules include twiml.h only.
 */
#ifndef SWITCHBOARD_TWIML_IMPL_H
#define SWITCHBOARD_TWIML_IMPL_H

#include <stddef.h>

#include "twiml/twiml.h"

typedef enum {
    TWIML_EL_RESPONSE,
    TWIML_EL_SAY,
    TWIML_EL_PLAY,
    TWIML_EL_PAUSE,
    TWIML_EL_GATHER,
    TWIML_EL_DIAL,
    TWIML_EL_NUMBER,
    TWIML_EL_SIP,
    TWIML_EL_CLIENT,
    TWIML_EL_CONFERENCE,
    TWIML_EL_QUEUE,
    TWIML_EL_CONNECT,
    TWIML_EL_START,
    TWIML_EL_STOP,
    TWIML_EL_STREAM,
    TWIML_EL_PARAMETER,
    TWIML_EL_RECORD,
    TWIML_EL_REDIRECT,
    TWIML_EL_REJECT,
    TWIML_EL_HANGUP,
    TWIML_EL_COUNT
} twiml_el_t;

typedef enum { TWIML_A_STR, TWIML_A_INT, TWIML_A_BOOL, TWIML_A_LIST } twiml_atype_t;

/* One attribute: its XML name, type and the offset of its field in the
 * options struct. Tables end with {NULL}. */
typedef struct {
    const char *name;
    twiml_atype_t type;
    size_t off;
} twiml_attr_t;

typedef enum {
    TWIML_NO_TEXT,       /* empty element */
    TWIML_TEXT_MAYBE,    /* NULL means no text */
    TWIML_TEXT_ANY,      /* required, may be "" */
    TWIML_TEXT_NONEMPTY, /* required, not "" */
} twiml_text_t;

/*
 * Writes element `el` inside the innermost open element: its attributes from
 * `opts` (may be NULL) per `attrs`, then its text. A `container` is left open
 * for twiml__end(). Returns the document's error.
 */
int twiml__element(twiml_doc_t *doc, twiml_el_t el, const twiml_attr_t *attrs, const void *opts, twiml_text_t tm,
                   const char *text, int container);
/* Closes container `el`, which must be innermost; `needs_child`: empty is an error. */
int twiml__end(twiml_doc_t *doc, twiml_el_t el, int needs_child);
/* Records TWIML_EINVAL with `msg`, unless the document already failed or is finished. */
void twiml__invalid(twiml_doc_t *doc, const char *msg);
/* The innermost open element. */
twiml_el_t twiml__innermost(const twiml_doc_t *doc);

#endif
