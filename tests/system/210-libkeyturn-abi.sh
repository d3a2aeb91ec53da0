#!/bin/bash
# libkeyturn's public face: the shared library exports exactly the functions
# of client/libkeyturn.sym, which are exactly those keyturn.h declares, under
# SONAME libkeyturn.so.1; keyturn.h compiles alone as C99, C11 and C++11
# with every warning an error; keyturn.pc gives -lkeyturn.

. "$KT_SRCDIR/tests/lib/common.sh"

LIB="$KT_BUILDDIR/.libs/libkeyturn.so.1"
SYM="$KT_SRCDIR/client/libkeyturn.sym"
HDR="$KT_SRCDIR/include/keyturn.h"
PC_DIR="$KT_BUILDDIR/client"
need_built "$LIB"

# The symbols a sanitized build may add on its own; they are allowed only
# when the library was linked against a sanitizer runtime.
SAN_RE='^(__asan_|__ubsan_|__lsan_|__sanitizer_|__sancov_)'
sanitized=no
readelf -d "$LIB" | grep -qE 'NEEDED.*lib(asan|ubsan)' && sanitized=yes
diag "sanitized build: $sanitized"

# --- exports ---------------------------------------------------------------------
sort -u <(sed -n 's/^[[:space:]]*\(keyturn_[a-z0-9_]*\);.*/\1/p' "$SYM") >"$T/sym.list"
sort -u <(grep -oE '\bkeyturn_[a-z0-9_]+[[:space:]]*\(' "$HDR" | sed 's/[[:space:]]*($//') >"$T/hdr.list"
# nm -D: every defined dynamic symbol, without its version (name@@KEYTURN_1).
nm -D --defined-only "$LIB" | awk '{print $2, $3}' | sed 's/@.*//' >"$T/nm.all"
# The version nodes (KEYTURN_1, ...) are absolute symbols, not functions.
grep -v '^A ' "$T/nm.all" | awk '{print $2}' | sort -u >"$T/nm.list"
grep '^keyturn_' "$T/nm.list" >"$T/nm.keyturn"

check "libkeyturn.sym lists at least the 22 functions of the API" test "$(wc -l <"$T/sym.list")" -ge 22
if cmp -s "$T/sym.list" "$T/hdr.list"; then
	ok "libkeyturn.sym lists exactly the functions that keyturn.h declares"
else
	not_ok "libkeyturn.sym lists exactly the functions that keyturn.h declares"
	diff "$T/hdr.list" "$T/sym.list" | sed 's/^/#   /'
fi
if cmp -s "$T/sym.list" "$T/nm.keyturn"; then
	ok "nm -D: the keyturn_* exports are exactly those of libkeyturn.sym"
else
	not_ok "nm -D: the keyturn_* exports are exactly those of libkeyturn.sym"
	diff "$T/sym.list" "$T/nm.keyturn" | sed 's/^/#   /'
fi
if [ "$sanitized" = yes ]; then
	grep -vE "$SAN_RE" "$T/nm.list"
else
	cat "$T/nm.list"
fi | grep -v '^keyturn_' >"$T/nm.other"
if [ ! -s "$T/nm.other" ]; then
	ok "nm -D: nothing else is exported (no internal kt_* or common/ symbol leaks)"
else
	not_ok "nm -D: nothing else is exported (no internal kt_* or common/ symbol leaks)"
	sed 's/^/#   /' "$T/nm.other" | head -n 20
fi
# The version nodes of libkeyturn.sym (KEYTURN_1, then one per addition),
# and each function with the node that exports it: "FUNC GLOBAL DEFAULT name@@NODE".
sed -n 's/^\(KEYTURN_[0-9.]*\) {.*/\1/p' "$SYM" | sort >"$T/nodes.list"
awk '/^KEYTURN_[0-9.]* \{/ {node = $1} match($0, /^[[:space:]]*keyturn_[a-z0-9_]*;/) {
	name = $1; sub(/;.*/, "", name); print "FUNC GLOBAL DEFAULT " name "@@" node }' "$SYM" |
	sort >"$T/dyn.want"
check "libkeyturn.sym starts with the node KEYTURN_1" test "$(head -n 1 "$T/nodes.list")" = KEYTURN_1
expect_eq "nm -D: the only absolute symbols are the version nodes of libkeyturn.sym" \
	"$(tr '\n' ' ' <"$T/nodes.list")" "$(grep '^A ' "$T/nm.all" | awk '{print $2}' | sort | tr '\n' ' ')"
# readelf: each export is a global, default-visibility function of the node
# libkeyturn.sym puts it in.
readelf --dyn-syms -W "$LIB" | awk '$7 != "UND" && $8 ~ /^keyturn_/ {print $4, $5, $6, $8}' |
	sort -u >"$T/dyn.list"
if cmp -s "$T/dyn.want" "$T/dyn.list"; then
	ok "every keyturn_* export is a FUNC GLOBAL DEFAULT at the version node libkeyturn.sym gives it"
else
	not_ok "every keyturn_* export is a FUNC GLOBAL DEFAULT at the version node libkeyturn.sym gives it"
	diff "$T/dyn.want" "$T/dyn.list" | sed 's/^/#   /'
fi

# --- SONAME ------------------------------------------------------------------------
soname=$(readelf -d "$LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
expect_eq "SONAME is libkeyturn.so.1" "libkeyturn.so.1" "$soname"
check "libkeyturn.so.1 is the file that SONAME names, next to the library" test -e "$KT_BUILDDIR/.libs/$soname"

# --- the header, alone ---------------------------------------------------------------
hdr_c() { echo '#include <keyturn.h>' | gcc "$@" -I"$KT_SRCDIR/include" -Wall -Wextra -pedantic -Werror -fsyntax-only -x c -; }
check "keyturn.h compiles alone: gcc -std=c99 -Wall -Wextra -pedantic -Werror" hdr_c -std=c99
check "keyturn.h compiles alone: gcc -std=c11 -Wall -Wextra -pedantic -Werror" hdr_c -std=c11
check "keyturn.h compiles alone from its own path" \
	gcc -std=c99 -Wall -Wextra -pedantic -Werror -fsyntax-only "$HDR"
if command -v g++ >/dev/null; then
	check "keyturn.h compiles alone: g++ -std=c++11 -Wall -Wextra -pedantic -Werror" \
		sh -c "echo '#include <keyturn.h>' | g++ -std=c++11 -I'$KT_SRCDIR/include' -Wall -Wextra -pedantic -Werror -fsyntax-only -x c++ -"
	check "keyturn.h compiles alone from its own path as C++" \
		g++ -std=c++11 -Wall -Wextra -pedantic -Werror -fsyntax-only -x c++ "$HDR"
else
	skip_test "g++ is not installed: the C++ check of keyturn.h needs it"
	skip_test "g++ is not installed: the C++ check of keyturn.h needs it"
fi

# --- a program built against the header and the library --------------------------------
cat >"$T/abi.c" <<'EOF2'
#include <string.h>
#include <keyturn.h>
int main(void)
{
	int err = -1;
	keyturn_t *kt = keyturn_open("/nonexistent/keyturn.sock", &err);
	keyturn_value_t *v = NULL;
	int rc = kt == NULL || keyturn_get(kt, "x", NULL, NULL, NULL, &v) != KEYTURN_E_CONNECT ||
		 strlen(keyturn_strerror(KEYTURN_E_CONNECT)) == 0;
	keyturn_close(kt);
	return rc;
}
EOF2
# A sanitized library needs its runtime loaded first: link the program with it.
san=""
[ "$sanitized" = yes ] && san="-fsanitize=address,undefined"
check "a C program links with -lkeyturn alone and calls the library" sh -c \
	"gcc -std=c99 $san -I'$KT_SRCDIR/include' '$T/abi.c' -L'$KT_BUILDDIR/.libs' -lkeyturn -o '$T/abi' && LD_LIBRARY_PATH='$KT_BUILDDIR/.libs' '$T/abi'"

# --- pkg-config ---------------------------------------------------------------------------
if command -v pkg-config >/dev/null; then
	check "keyturn.pc is built" test -f "$PC_DIR/keyturn.pc"
	libs=$(PKG_CONFIG_PATH="$PC_DIR" pkg-config --libs keyturn 2>/dev/null)
	diag "pkg-config --libs keyturn: $libs"
	check "pkg-config --libs keyturn gives -lkeyturn" sh -c "printf ' %s ' \"\$1\" | grep -q -- ' -lkeyturn '" _ "$libs"
	cflags=$(PKG_CONFIG_PATH="$PC_DIR" pkg-config --cflags keyturn 2>/dev/null)
	check "pkg-config --cflags keyturn gives an include directory" sh -c "printf '%s' \"\$1\" | grep -q -- '-I'" _ "$cflags"
	check "keyturn.pc carries the package version" \
		test "$(PKG_CONFIG_PATH="$PC_DIR" pkg-config --modversion keyturn 2>/dev/null)" = \
		"$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$KT_BUILDDIR/config.h")"
else
	for i in 1 2 3 4; do skip_test "pkg-config is not installed"; done
fi
done_testing
