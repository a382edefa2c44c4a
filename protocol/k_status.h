/*
 * Internal status codes shared by every layer.
 *
 * Functions return 0 or one of these negative values (libuv's habit). Kafka error codes are
 * data carried in responses (see kp_errors.h) and are never returned through this channel.
 */
#ifndef K_STATUS_H
#define K_STATUS_H

enum {
    K_OK = 0,
    K_ERR_NOMEM = -1,       /* allocation failed */
    K_ERR_IO = -2,          /* an I/O call failed; errno is kept next to it by the caller */
    K_ERR_CORRUPT = -3,     /* stored bytes fail a framing or CRC check */
    K_ERR_MALFORMED = -4,   /* bytes from the wire do not parse */
    K_ERR_UNSUPPORTED = -5, /* valid but not supported (version, magic, feature) */
    K_ERR_NOENT = -6,       /* no such topic/partition/file/offset */
    K_ERR_EXISTS = -7,      /* already exists */
    K_ERR_INVAL = -8,       /* bad argument from a caller */
    K_ERR_NOSPC = -9,       /* out of disk or over the flash budget */
    K_ERR_TOOLARGE = -10,   /* exceeds a configured size limit */
    K_ERR_RANGE = -11,      /* offset or index out of range */
    K_ERR_AGAIN = -12,      /* try again later (retriable) */
    K_ERR_CLOSED = -13,     /* object is shutting down */
};

static inline const char *k_strerror(int rc)
{
    switch (rc) {
    case K_OK: return "ok";
    case K_ERR_NOMEM: return "out of memory";
    case K_ERR_IO: return "I/O error";
    case K_ERR_CORRUPT: return "corrupt data";
    case K_ERR_MALFORMED: return "malformed input";
    case K_ERR_UNSUPPORTED: return "unsupported";
    case K_ERR_NOENT: return "not found";
    case K_ERR_EXISTS: return "already exists";
    case K_ERR_INVAL: return "invalid argument";
    case K_ERR_NOSPC: return "no space";
    case K_ERR_TOOLARGE: return "too large";
    case K_ERR_RANGE: return "out of range";
    case K_ERR_AGAIN: return "try again";
    case K_ERR_CLOSED: return "closed";
    default: return "unknown status";
    }
}

#endif
