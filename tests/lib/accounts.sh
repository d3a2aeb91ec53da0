# For system tests that need root and make local accounts: skip every planned
# check (with the reason) where that is impossible, and remove the users and
# groups made, on any exit. Set PLANNED, source this before common.sh, and
# after common.sh set `trap cleanup_accounts EXIT`.

# skip_all REASON: reports each of the PLANNED checks as skipped, then exits.
skip_all() {
	local i
	echo "1..$PLANNED"
	for ((i = 1; i <= PLANNED; i++)); do
		echo "ok $i # SKIP $1"
	done
	exit 0
}

# need_root_accounts WHAT: skips everything unless root with useradd/groupadd.
need_root_accounts() {
	[ "$(id -u)" -eq 0 ] || skip_all "needs root to $1"
	PATH=$PATH:/usr/sbin:/sbin
	command -v useradd >/dev/null && command -v groupadd >/dev/null ||
		skip_all "needs useradd and groupadd to $1"
}

made_users=()
made_groups=()

# cleanup_accounts: common.sh's cleanup, then the accounts this test made.
cleanup_accounts() {
	local n
	kt_cleanup
	for n in "${made_users[@]}"; do
		userdel "$n" >/dev/null 2>&1 || echo "# could not remove user $n" >&2
	done
	for n in "${made_groups[@]}"; do
		groupdel "$n" >/dev/null 2>&1 || echo "# could not remove group $n" >&2
	done
}
