/*
 * systemd readiness notification (Type=notify) without libsystemd: see notify.c for why.
 * kb_notify("READY=1\nSTATUS=...") once the broker listens and its store is open;
 * kb_notify("STOPPING=1") when shutdown begins. A no-op (0) without $NOTIFY_SOCKET.
 * Returns 0, K_ERR_INVAL (bad socket path) or K_ERR_IO (errno kept). Any thread.
 */
#ifndef KB_NOTIFY_H
#define KB_NOTIFY_H

#include "broker/kb.h"

int kb_notify(const char *state);

#endif
