/*
 * File ranges in a response (kb_piece_t, kb.h): the zero-copy Fetch hands the connection
 * segment descriptors instead of record bytes. The encoder leaves a hole for each range in
 * req->resp (protocol/kp_buf.h, KP_HOLE); on_hole records where, in the order the ranges were
 * added. conn.c sends the response as a scatter list: resp's bytes between the holes from
 * memory, each range from its file (transport write_file: sendfile, or bounded reads on TLS).
 *
 * Ownership: the pieces array lives in the request's arena; each fd belongs to the request
 * from kb_req_add_file until kb_req_drop_pieces or the request is freed (conn.c calls
 * kb_req_drop_pieces from req_free), which is after the transport has sent or cancelled it.
 *
 * Descriptors are a shared budget: segment files, sockets and pieces use the same limit. The
 * broker's pieces may hold a quarter of RLIMIT_NOFILE at once (b->net.piece_fds); past that,
 * kb_req_file_room says no and the Fetch copies the partition as before, so a crowd of
 * consumers asking for thousands of partitions cannot starve accept() or the segment files.
 */
#include <sys/resource.h>
#include <unistd.h>

#include "broker/core/server.h"

#define PIECES_FIRST 8

static void on_hole(void *ud, size_t at, size_t len)
{
    kb_req_t *req = ud;
    if (req->pieces_placed >= req->npieces || req->pieces[req->pieces_placed].len != len) {
        if (!req->resp.err) /* a hole with no range behind it: the answer cannot be sent */
            req->resp.err = K_ERR_INVAL;
        return;
    }
    req->pieces[req->pieces_placed++].at = at;
}

bool kb_req_zero_copy(const kb_req_t *req)
{
    return req->conn != NULL && !req->raw_sasl;
}

bool kb_req_file_room(const kb_req_t *req)
{
    kb_net_t *n = &req->broker->net;
    if (n->piece_fd_cap == 0) {
        struct rlimit rl;
        rlim_t lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        n->piece_fd_cap = lim == RLIM_INFINITY || lim > (1u << 22) ? (1 << 20) : (int64_t)lim / 4;
        if (n->piece_fd_cap < 16) n->piece_fd_cap = 16;
    }
    return n->piece_fds < n->piece_fd_cap;
}

int kb_req_add_file(kb_req_t *req, int fd, int64_t off, size_t len)
{
    if (req->npieces == req->pieces_cap) {
        int cap = req->pieces_cap ? req->pieces_cap * 2 : PIECES_FIRST;
        kb_piece_t *n = kp_arena_alloc(&req->arena, sizeof *n * (size_t)cap);
        if (!n) {
            close(fd);
            return K_ERR_NOMEM;
        }
        for (int i = 0; i < req->npieces; i++)
            n[i] = req->pieces[i];
        req->pieces = n; /* the old array stays in the arena until the request ends */
        req->pieces_cap = cap;
    }
    req->pieces[req->npieces++] = (kb_piece_t){.at = 0, .fd = fd, .off = off, .len = len};
    req->broker->net.piece_fds++;
    req->resp.on_hole = on_hole;
    req->resp.hole_ud = req;
    return 0;
}

void kb_req_drop_pieces(kb_req_t *req)
{
    for (int i = 0; i < req->npieces; i++)
        if (req->pieces[i].fd >= 0) {
            close(req->pieces[i].fd);
            req->broker->net.piece_fds--;
        }
    req->npieces = req->pieces_placed = 0;
}

uint64_t kb_req_resp_size(const kb_req_t *req)
{
    uint64_t n = req->resp.len >= 4 ? req->resp.len - 4 : 0;
    for (int i = 0; i < req->npieces; i++)
        n += req->pieces[i].len;
    return n;
}
