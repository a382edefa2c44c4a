/*
 * depotctl internals shared by its command files (depotctl.c: produce/consume/topics,
 * depotctl_groups.c: groups and consume --group, depotctl_schemas.c: schema registry).
 * Single-threaded.
 */
#ifndef DEPOTCTL_H
#define DEPOTCTL_H

#include <signal.h>
#include <stdbool.h>

#include "client/kc.h"

#define MAX_CONFIGS 64

typedef struct {
    const char *cmd;
    const char *bootstrap;
    const char *topic;
    const char *group;
    const char *command_config; /* Kafka client properties (SASL) */
    int32_t partition;
    const char *offset; /* number, "earliest" or "latest" */
    bool from_beginning;
    long max_messages;
    long timeout_ms;
    bool parse_key, print_key, parse_headers;
    bool print_headers, print_timestamp, print_offset, print_partition;
    const char *key_sep;
    const char *compression;
    int acks;
    const char *action;   /* topics: list/create/delete/describe; groups: list/describe/reset */
    const char *reset_to; /* groups --reset-offsets: earliest, latest or offset */
    const char *to_offset;
    bool execute;
    int32_t partitions;
    int16_t replication;
    kc_config_entry_t configs[MAX_CONFIGS];
    int nconfigs;
    char *owned[MAX_CONFIGS]; /* strdup'd k=v buffers behind configs */
} opts_t;

extern volatile sig_atomic_t ctl_stop;

/* Prints the client's last error ("depotctl: ...") and returns 1. */
int ctl_fail(kc_client_t *c);
/* Prints a usage error and returns 2. */
int ctl_bad(const char *fmt, const char *arg);
/* Prints one consumed record as the console consumer does. */
void ctl_print_message(const opts_t *o, const kc_message_t *m);

int cmd_groups(kc_client_t *c, const opts_t *o);
/* depotctl_security.c: acls and users parse their own flags from argv. */
int cmd_acls(kc_client_t *c, int argc, char **argv);
int cmd_users(kc_client_t *c, int argc, char **argv);
/* Reads a Kafka client properties file (--command-config): security.protocol, sasl.mechanism,
 * sasl.jaas.config (username="..." password="...") or sasl.username/sasl.password. The
 * strings go to cfg and live in static storage. 0, or 2 after printing a usage error. */
int ctl_command_config(const char *path, kc_config_t *cfg);
/* depotctl acls / depotctl users (own flags; --bootstrap-server and --command-config too). */
int ctl_security_main(int argc, char **argv);
/* depotctl status (depotctl_status.c): argv after "status"; returns the exit status. */
int ctl_status(int argc, char **argv);
/* depotctl schemas ... (depotctl_schemas.c): argv after "schemas"; returns the exit status. */
int ctl_schemas(int argc, char **argv);
int cmd_consume_group(kc_client_t *c, const opts_t *o);
/* depotctl uplink status [--data-dir DIR] [--json] (depotctl_uplink.c): no connection. */
int cmd_uplink(int argc, char **argv);

#endif
