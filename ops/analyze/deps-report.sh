#!/usr/bin/env bash
# deps-report.sh BIN_DIR [DEB_PKGS...] -- what `make deps-report` prints: every shared library
# the Phoenix binaries link, with the Debian package and version it comes from, then every
# package of DEB_PKGS; each flagged when apt has an update pending for it ("security" when the
# update comes from a -security suite). Reads apt's current lists: run `apt-get update` first
# (the make target does, when it may). Exit 1 when a security update is pending, so CI can
# gate on it; docs/security.md ("Dependencies") is the update process.
set -uo pipefail
BIN=${1:?usage: deps-report.sh BIN_DIR [DEB_PKGS...]}
shift
# pkg -> "candidate (suite)" for every pending upgrade.
declare -A PENDING
while read -r _ pkg _old rest; do
    PENDING[$pkg]=$rest
done < <(apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | sed -n 's/^Inst //p')
status() { # status PKG -> "ok" | "update ..." | "SECURITY ..."
    local p=${1%%:*} u
    u=${PENDING[$p]:-}
    if [ -z "$u" ]; then echo ok
    elif [[ $u == *-security* ]]; then echo "SECURITY update: $u"
    else echo "update: $u"; fi
}
sec=0
printf '%-28s %-34s %-28s %s\n' library package version status
# Every library the binaries link, resolved to its file; then one dpkg -S for all of them
# (one call per file takes minutes: dpkg reads its whole file list each time).
declare -A LIBPATH
for b in "$BIN"/*; do
    [ -x "$b" ] || continue
    while read -r lib path; do
        [ -n "$path" ] && LIBPATH[$lib]=$(readlink -f "$path")
    done < <(ldd "$b" 2>/dev/null | awk '$2 == "=>" {print $1, $3}')
done
declare -A OWNER
while IFS= read -r line; do
    OWNER[${line#*: }]=${line%%: *}
done < <(for p in "${LIBPATH[@]}"; do echo "$p"; echo "${p#/usr}"; done | # merged /usr: either
    sort -u | xargs dpkg -S 2>/dev/null)
for lib in $(printf '%s\n' "${!LIBPATH[@]}" | sort); do
    real=${LIBPATH[$lib]}
    pkg=${OWNER[$real]:-${OWNER[${real#/usr}]:-}}
    ver=$(dpkg-query -W -f='${Version}' "${pkg:-none}" 2>/dev/null)
    st=$(status "${pkg:-none}")
    [[ $st == SECURITY* ]] && sec=1
    printf '%-28s %-34s %-28s %s\n' "$lib" "${pkg:-?}" "${ver:-?}" "$st"
done
echo
printf '%-34s %-28s %s\n' "package (DEB_PKGS)" version status
for p in "$@"; do
    ver=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null) || ver="not installed"
    st=$(status "$p")
    [[ $st == SECURITY* ]] && sec=1
    printf '%-34s %-28s %s\n' "$p" "$ver" "$st"
done
exit $sec
