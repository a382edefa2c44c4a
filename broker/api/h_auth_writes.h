/*
 * The ACL file and the SCRAM credential file written off the loop (issue #19), for CreateAcls,
 * DeleteAcls (h_acls.c) and AlterUserScramCredentials (h_scram_admin.c), as the dynamic broker
 * configs are (h_broker_configs.c): per file one write at a time, in arrival order, on libuv's
 * threadpool through kb_write_file_durably_mode.
 *
 * A handler computes its change on the loop on a copy of the newest state (kb_authw_latest:
 * the state the last queued change leaves, else the live one), renders the file's text from
 * it and hands both to kb_authw_submit. The request is held; when the file is durable apply()
 * makes the copy live and done() builds the answer, so a request that arrives after the answer
 * sees the change, and one that arrives while it is being written does not (the change is
 * applied in memory only once durable). A failed write leaves memory as it is (= the disk): it
 * and every change queued behind it (computed on top of it) fail.
 *
 * Thread: loop thread.
 */
#ifndef KB_H_AUTH_WRITES_H
#define KB_H_AUTH_WRITES_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/api/h_common.h"

enum { KB_AUTHW_ACLS, KB_AUTHW_CREDS, KB_AUTHW_FILES };

typedef struct {
    int file;         /* KB_AUTHW_ACLS or KB_AUTHW_CREDS */
    const char *dir;  /* copied */
    const char *name; /* the file name in dir; a string literal */
    char *text;       /* the file's bytes, heap: owned by the queue from kb_authw_submit on */
    size_t len;
    void *next;                   /* the state with the change, owned by the queue likewise */
    void (*free_next)(void *next); /* frees next (and cleanses it) */
    /* On the loop once the file is durable: the live state becomes next (swap its contents:
     * what is left in next is freed). */
    void (*apply)(kb_broker_t *b, void *next);
    /* Builds the answer in req->resp: ok = the change is durable and live. KB_DONE or < 0
     * (the connection closes). */
    int (*done)(kb_req_t *req, void *ud, bool ok);
    void *ud; /* lives as long as req (its arena) */
} kb_authw_t;

/* The state the last queued change of file leaves (to compute the next change on), NULL when
 * nothing is queued. */
void *kb_authw_latest(kb_broker_t *b, int file);

/* Queues w's write; returns KB_PENDING (done() answers later). Without a connection (unit
 * tests) or a threadpool, writes here and returns done()'s result. The queue owns w->text and
 * w->next from the call on, also when it fails. */
int kb_authw_submit(kb_req_t *req, const kb_authw_t *w);

void kb_authw_close(kb_hstate_t *hs); /* the api subsystem's close */

#endif
