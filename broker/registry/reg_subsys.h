/*
 * The registry subsystem (broker/subsystems.c): with schema.registry.listeners set, init opens
 * the registry (`_schemas`) and serves its REST API on the HTTP listener named "registry";
 * close answers what is still waiting for an fsync and frees it. Loop thread only.
 */
#ifndef KB_REG_SUBSYS_H
#define KB_REG_SUBSYS_H

#include "broker/core/subsys.h"
#include "broker/registry/registry.h"

extern const kb_subsys_t kb_registry_subsys;

/* The broker's registry, or NULL when it is off. */
kb_registry_t *kb_registry_of(kb_broker_t *b);

#endif
