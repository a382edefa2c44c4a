/*
 * The uplink's face to the rest of the broker beyond its kb_subsys_t (broker/subsystems.c):
 * only what needs no librdkafka header, so nothing outside broker/uplink/ compiles against it.
 */
#ifndef KB_UPLINK_H
#define KB_UPLINK_H

/* The linked librdkafka's version ("2.12.1"), asked at run time (rd_kafka_version_str): with
 * RDKAFKA=system it is whatever the loader found, not what the build saw. Static storage. */
const char *kb_uplink_client_version(void);

#endif
