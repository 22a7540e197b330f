/* schemas_embedded.h -- the JSON Schemas of schemas/, compiled into every binary.
 * The table itself is generated at build time by ops/build/embed-schemas.sh. */
#ifndef PHX_SCHEMAS_EMBEDDED_H
#define PHX_SCHEMAS_EMBEDDED_H

typedef struct phx_embedded_file {
    const char *name; /* file name without .json, e.g. "job.v1" */
    const char *text;
} phx_embedded_file;

extern const phx_embedded_file phx_embedded_schemas[];
extern const int phx_embedded_schemas_count;

#endif
