/*
 * twiml: the document and its writer (libxml2's xmlTextWriter): nesting
 * rules, attribute and text checks, the size limit. The verbs' attribute
 * lists are in twiml_verbs.c. See twiml.h.
 */
#include "twiml/twiml.h"
#include "twiml/twiml_impl.h"

#include <libxml/parser.h>
#include <libxml/xmlwriter.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN(e) (1u << (e))
#define VERB  IN(TWIML_EL_RESPONSE)

/* Each element's name and the elements it may be written inside. */
static const struct {
    const char *name;
    unsigned parents;
} el_info[TWIML_EL_COUNT] = {
    [TWIML_EL_RESPONSE] = {"Response", 0},
    [TWIML_EL_SAY] = {"Say", VERB | IN(TWIML_EL_GATHER)},
    [TWIML_EL_PLAY] = {"Play", VERB | IN(TWIML_EL_GATHER)},
    [TWIML_EL_PAUSE] = {"Pause", VERB | IN(TWIML_EL_GATHER)},
    [TWIML_EL_GATHER] = {"Gather", VERB},
    [TWIML_EL_DIAL] = {"Dial", VERB},
    [TWIML_EL_NUMBER] = {"Number", IN(TWIML_EL_DIAL)},
    [TWIML_EL_SIP] = {"Sip", IN(TWIML_EL_DIAL)},
    [TWIML_EL_CLIENT] = {"Client", IN(TWIML_EL_DIAL)},
    [TWIML_EL_CONFERENCE] = {"Conference", IN(TWIML_EL_DIAL)},
    [TWIML_EL_QUEUE] = {"Queue", IN(TWIML_EL_DIAL)},
    [TWIML_EL_CONNECT] = {"Connect", VERB},
    [TWIML_EL_START] = {"Start", VERB},
    [TWIML_EL_STOP] = {"Stop", VERB},
    [TWIML_EL_STREAM] = {"Stream", IN(TWIML_EL_CONNECT) | IN(TWIML_EL_START) | IN(TWIML_EL_STOP)},
    [TWIML_EL_PARAMETER] = {"Parameter", IN(TWIML_EL_STREAM)},
    [TWIML_EL_RECORD] = {"Record", VERB},
    [TWIML_EL_REDIRECT] = {"Redirect", VERB},
    [TWIML_EL_REJECT] = {"Reject", VERB},
    [TWIML_EL_HANGUP] = {"Hangup", VERB},
};

/* Deepest nesting of containers: Response > Connect > Stream. */
#define MAX_DEPTH 3

struct twiml_doc {
    xmlBufferPtr buf;
    xmlTextWriterPtr w;
    int err; /* first error, sticky */
    int finished;
    twiml_el_t cur; /* element being written, for messages */
    int depth;
    struct {
        twiml_el_t el;
        int children;
    } stack[MAX_DEPTH];
    char errmsg[160];
};

static const char XML_DECL[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

__attribute__((format(printf, 3, 4))) static int set_err(twiml_doc_t *doc, int err, const char *fmt, ...)
{
    va_list ap;
    if (doc->err != TWIML_OK)
        return doc->err;
    doc->err = err;
    va_start(ap, fmt);
    vsnprintf(doc->errmsg, sizeof doc->errmsg, fmt, ap);
    va_end(ap);
    return err;
}

/* libxml2 writer calls return -1 on failure (in practice: out of memory). */
static int xw(twiml_doc_t *doc, int rc)
{
    if (rc < 0)
        return set_err(doc, TWIML_EXML, "libxml2 writer failed in <%s>", el_info[doc->cur].name);
    return TWIML_OK;
}

/*
 * Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF) made
 * of XML 1.0 Chars: libxml2 would otherwise copy bad bytes through or emit
 * character references XML forbids.
 */
static int check_chars(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        uint32_t c, min;
        int n;
        if (*p < 0x80) {
            if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
                return TWIML_ECHAR;
            p++;
            continue;
        }
        if ((*p & 0xe0) == 0xc0) {
            n = 2, c = *p & 0x1f, min = 0x80;
        } else if ((*p & 0xf0) == 0xe0) {
            n = 3, c = *p & 0x0f, min = 0x800;
        } else if ((*p & 0xf8) == 0xf0) {
            n = 4, c = *p & 0x07, min = 0x10000;
        } else {
            return TWIML_EUTF8;
        }
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
                return TWIML_EUTF8;
            c = (c << 6) | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return TWIML_EUTF8;
        if (c == 0xfffe || c == 0xffff)
            return TWIML_ECHAR;
        p += n;
    }
    return TWIML_OK;
}

/* `what` names the attribute or "text", for the message. */
static int check_str(twiml_doc_t *doc, const char *what, const char *s)
{
    int rc;
    if (strnlen(s, TWIML_MAX_BYTES + 1) > TWIML_MAX_BYTES)
        return set_err(doc, TWIML_ETOOBIG, "%s of <%s> is longer than the document limit", what,
                       el_info[doc->cur].name);
    if ((rc = check_chars(s)) == TWIML_EUTF8)
        return set_err(doc, rc, "%s of <%s> is not valid UTF-8", what, el_info[doc->cur].name);
    if (rc == TWIML_ECHAR)
        return set_err(doc, rc, "%s of <%s> contains a character XML cannot carry", what, el_info[doc->cur].name);
    return TWIML_OK;
}

static int check_size(twiml_doc_t *doc)
{
    if (doc->err == TWIML_OK && xw(doc, xmlTextWriterFlush(doc->w)) == TWIML_OK &&
        xmlBufferLength(doc->buf) > TWIML_MAX_BYTES)
        set_err(doc, TWIML_ETOOBIG, "document is larger than %d bytes", TWIML_MAX_BYTES);
    return doc->err;
}

static int usable(twiml_doc_t *doc)
{
    if (doc->err != TWIML_OK)
        return 0;
    if (doc->finished) {
        set_err(doc, TWIML_ENEST, "document already finished");
        return 0;
    }
    return 1;
}

/* Starts element `el` inside the innermost open element. */
static int open_el(twiml_doc_t *doc, twiml_el_t el)
{
    twiml_el_t parent;
    if (doc == NULL)
        return TWIML_EINVAL;
    if (!usable(doc))
        return doc->err;
    parent = doc->stack[doc->depth - 1].el;
    if (!(el_info[el].parents & IN(parent)))
        return set_err(doc, TWIML_ENEST, "<%s> is not allowed inside <%s>", el_info[el].name, el_info[parent].name);
    doc->cur = el;
    doc->stack[doc->depth - 1].children++;
    return xw(doc, xmlTextWriterStartElement(doc->w, BAD_CAST el_info[el].name));
}

static int close_leaf(twiml_doc_t *doc)
{
    if (doc->err == TWIML_OK && xw(doc, xmlTextWriterEndElement(doc->w)) == TWIML_OK)
        check_size(doc);
    return doc->err;
}

static int push(twiml_doc_t *doc, twiml_el_t el)
{
    if (doc->err != TWIML_OK)
        return doc->err;
    if (doc->depth == MAX_DEPTH) /* unreachable given el_info parents; keeps the stack safe */
        return set_err(doc, TWIML_ENEST, "<%s> nested too deeply", el_info[el].name);
    doc->stack[doc->depth].el = el;
    doc->stack[doc->depth].children = 0;
    doc->depth++;
    return TWIML_OK;
}

int twiml__end(twiml_doc_t *doc, twiml_el_t el, int needs_child)
{
    twiml_el_t top;
    if (doc == NULL)
        return TWIML_EINVAL;
    if (!usable(doc))
        return doc->err;
    top = doc->stack[doc->depth - 1].el;
    if (top != el)
        return set_err(doc, TWIML_ENEST, "ending <%s> but the innermost open element is <%s>", el_info[el].name,
                       el_info[top].name);
    if (needs_child && doc->stack[doc->depth - 1].children == 0)
        return set_err(doc, TWIML_EEMPTY, "<%s> has nothing inside", el_info[el].name);
    doc->depth--;
    doc->cur = doc->stack[doc->depth - 1].el;
    if (xw(doc, xmlTextWriterEndElement(doc->w)) == TWIML_OK)
        check_size(doc);
    return doc->err;
}

static void attr_str(twiml_doc_t *doc, const char *name, const char *v)
{
    if (doc->err != TWIML_OK || v == NULL || check_str(doc, name, v) != TWIML_OK)
        return;
    xw(doc, xmlTextWriterWriteAttribute(doc->w, BAD_CAST name, BAD_CAST v));
}

static void attr_int(twiml_doc_t *doc, const char *name, int v)
{
    if (doc->err != TWIML_OK || v == 0)
        return;
    if (v < 0 && v != TWIML_ZERO) {
        set_err(doc, TWIML_EINVAL, "%s of <%s> is negative (use TWIML_ZERO for 0)", name, el_info[doc->cur].name);
        return;
    }
    xw(doc, xmlTextWriterWriteFormatAttribute(doc->w, BAD_CAST name, "%d", v == TWIML_ZERO ? 0 : v));
}

static void attr_bool(twiml_doc_t *doc, const char *name, twiml_bool_t v)
{
    if (doc->err != TWIML_OK || v == TWIML_UNSET)
        return;
    if (v != TWIML_TRUE && v != TWIML_FALSE) {
        set_err(doc, TWIML_EINVAL, "%s of <%s> is not a twiml_bool_t", name, el_info[doc->cur].name);
        return;
    }
    xw(doc, xmlTextWriterWriteAttribute(doc->w, BAD_CAST name, BAD_CAST(v == TWIML_TRUE ? "true" : "false")));
}

static void attr_list(twiml_doc_t *doc, const char *name, const char *const *v)
{
    if (doc->err != TWIML_OK || v == NULL || v[0] == NULL)
        return;
    for (size_t i = 0; v[i] != NULL; i++) {
        if (v[i][0] == '\0' || strchr(v[i], ' ') != NULL) {
            set_err(doc, TWIML_EINVAL, "%s of <%s> has an empty item or one with a space", name,
                    el_info[doc->cur].name);
            return;
        }
        if (check_str(doc, name, v[i]) != TWIML_OK)
            return;
    }
    if (xw(doc, xmlTextWriterStartAttribute(doc->w, BAD_CAST name)) != TWIML_OK)
        return;
    for (size_t i = 0; v[i] != NULL && doc->err == TWIML_OK; i++) {
        if (i > 0)
            xw(doc, xmlTextWriterWriteString(doc->w, BAD_CAST " "));
        if (doc->err == TWIML_OK)
            xw(doc, xmlTextWriterWriteString(doc->w, BAD_CAST v[i]));
    }
    if (doc->err == TWIML_OK)
        xw(doc, xmlTextWriterEndAttribute(doc->w));
}

/* Element text: never NULL; `nonempty`: "" is an error too. */
static void body(twiml_doc_t *doc, const char *s, int nonempty)
{
    if (doc->err != TWIML_OK)
        return;
    if (s == NULL || (nonempty && s[0] == '\0')) {
        set_err(doc, TWIML_EINVAL, "<%s> needs its text", el_info[doc->cur].name);
        return;
    }
    if (s[0] != '\0' && check_str(doc, "text", s) == TWIML_OK)
        xw(doc, xmlTextWriterWriteString(doc->w, BAD_CAST s));
}

static int doc_err(const twiml_doc_t *doc)
{
    return doc == NULL ? TWIML_EINVAL : doc->err;
}

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void library_init_once(void)
{
    xmlInitParser();
}

void twiml_library_init(void)
{
    pthread_once(&library_once, library_init_once);
}

twiml_doc_t *twiml_doc_new(void)
{
    /* libxml2 fills its encoding table unlocked on first use (xmlFindCharEncodingHandler): two
     * workers' first documents at once raced on it; xmlInitParser fills it under its lock */
    twiml_library_init();
    twiml_doc_t *doc = calloc(1, sizeof *doc);
    if (doc == NULL)
        return NULL;
    if ((doc->buf = xmlBufferCreate()) == NULL || (doc->w = xmlNewTextWriterMemory(doc->buf, 0)) == NULL ||
        xmlTextWriterStartDocument(doc->w, NULL, "UTF-8", NULL) < 0 ||
        xmlTextWriterStartElement(doc->w, BAD_CAST "Response") < 0) {
        twiml_doc_free(doc);
        return NULL;
    }
    doc->stack[0].el = TWIML_EL_RESPONSE;
    doc->depth = 1;
    doc->cur = TWIML_EL_RESPONSE;
    return doc;
}

void twiml_doc_free(twiml_doc_t *doc)
{
    if (doc == NULL)
        return;
    if (doc->w != NULL)
        xmlFreeTextWriter(doc->w); /* before the buffer it writes into */
    if (doc->buf != NULL)
        xmlBufferFree(doc->buf);
    free(doc);
}

int twiml_finish(twiml_doc_t *doc, char **out, size_t *len)
{
    const char *content;
    size_t n, decl = sizeof XML_DECL - 1, total;
    char *res;

    if (out != NULL)
        *out = NULL;
    if (len != NULL)
        *len = 0;
    if (doc == NULL)
        return TWIML_EINVAL;
    if (out == NULL)
        return set_err(doc, TWIML_EINVAL, "twiml_finish needs an output pointer");
    if (!usable(doc))
        return doc->err;
    if (doc->depth != 1)
        return set_err(doc, TWIML_EOPEN, "<%s> is still open", el_info[doc->stack[doc->depth - 1].el].name);
    doc->finished = 1;
    if (xw(doc, xmlTextWriterEndDocument(doc->w)) != TWIML_OK || xw(doc, xmlTextWriterFlush(doc->w)) != TWIML_OK)
        return doc->err;

    /* The writer puts a newline after the declaration and at the end; Twilio's
     * helper libraries do not, so drop both. */
    content = (const char *)xmlBufferContent(doc->buf);
    n = (size_t)xmlBufferLength(doc->buf);
    if (n < decl + 2 || memcmp(content, XML_DECL, decl) != 0 || content[decl] != '\n' || content[n - 1] != '\n')
        return set_err(doc, TWIML_EXML, "unexpected libxml2 writer output");
    total = n - 2;
    if (total > TWIML_MAX_BYTES)
        return set_err(doc, TWIML_ETOOBIG, "document is larger than %d bytes", TWIML_MAX_BYTES);
    if ((res = malloc(total + 1)) == NULL)
        return set_err(doc, TWIML_ENOMEM, "out of memory");
    memcpy(res, content, decl);
    memcpy(res + decl, content + decl + 1, total - decl);
    res[total] = '\0';
    *out = res;
    if (len != NULL)
        *len = total;
    return TWIML_OK;
}

const char *twiml_strerror(int err)
{
    switch (err) {
    case TWIML_OK:
        return "no error";
    case TWIML_ENOMEM:
        return "out of memory";
    case TWIML_EINVAL:
        return "missing or invalid argument";
    case TWIML_ENEST:
        return "element not allowed here";
    case TWIML_EOPEN:
        return "element left open";
    case TWIML_EUTF8:
        return "string is not valid UTF-8";
    case TWIML_ECHAR:
        return "string contains a character XML cannot carry";
    case TWIML_ETOOBIG:
        return "TwiML document larger than 64 KB";
    case TWIML_EXML:
        return "XML writer failed";
    case TWIML_EEMPTY:
        return "element needs content";
    }
    return "unknown TwiML error";
}

const char *twiml_errmsg(const twiml_doc_t *doc)
{
    return doc == NULL ? "no document" : doc->errmsg;
}

/* ---- what twiml_verbs.c builds on ---- */

static void write_attrs(twiml_doc_t *doc, const twiml_attr_t *attrs, const void *opts)
{
    if (attrs == NULL || opts == NULL)
        return;
    for (const twiml_attr_t *a = attrs; a->name != NULL; a++) {
        const char *field = (const char *)opts + a->off;
        switch (a->type) {
        case TWIML_A_STR:
            attr_str(doc, a->name, *(const char *const *)field);
            break;
        case TWIML_A_INT:
            attr_int(doc, a->name, *(const int *)field);
            break;
        case TWIML_A_BOOL:
            attr_bool(doc, a->name, *(const twiml_bool_t *)field);
            break;
        case TWIML_A_LIST:
            attr_list(doc, a->name, *(const char *const *const *)field);
            break;
        }
    }
}

int twiml__element(twiml_doc_t *doc, twiml_el_t el, const twiml_attr_t *attrs, const void *opts, twiml_text_t tm,
                   const char *text, int container)
{
    if (open_el(doc, el) != TWIML_OK)
        return doc_err(doc);
    if (container)
        push(doc, el);
    write_attrs(doc, attrs, opts);
    if (tm != TWIML_NO_TEXT && (tm != TWIML_TEXT_MAYBE || text != NULL))
        body(doc, text, tm == TWIML_TEXT_NONEMPTY);
    if (!container)
        close_leaf(doc);
    return doc->err;
}

void twiml__invalid(twiml_doc_t *doc, const char *msg)
{
    if (doc != NULL && !doc->finished)
        set_err(doc, TWIML_EINVAL, "%s", msg);
}

twiml_el_t twiml__innermost(const twiml_doc_t *doc)
{
    return doc->stack[doc->depth - 1].el;
}
