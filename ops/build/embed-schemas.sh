#!/bin/sh
# Turn schemas/*.json into a C table so every binary carries its own message schemas and a
# deployment never depends on a schema directory being mounted next to it.
# usage: embed-schemas.sh schemas/a.json schemas/b.json ... > out.c
exec "$(dirname "$0")/embed-files.sh" phx_embedded_schemas .json "$@"
