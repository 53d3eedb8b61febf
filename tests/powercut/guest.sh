#!/bin/sh
# Runs in the power-cut guest, chrooted into the tools disk (see run.sh).
# Kernel command line: pc.phase=1|2 pc.ops=N pc.procs=N pc.seed=S pc.since=N
# pc.state=same|separate (state dir on the tracked fs, or on disk vdd)
# pc.commit=SECS (ext4 commit interval of the tracked fs)
# pc.cache=keep|lose: lose puts the tracked fs (vda) and, in the separate
# mode, the state disk (vdd) on dm-log-writes targets logging to vde and
# vdf; at step pc.cut (or at the workload's end) the guest itself freezes
# them in the order pc.order (data,state or state,data): suspend, then the
# table replaced by an error target, whose swap destroys the log-writes
# table and so drains its log (replaylog.py says why), then "PC FROZEN";
# the host then kills qemu and rebuilds the disks from the logs as a drive
# that lost its write cache.  "PC HERROR" marks a broken harness set-up.
# Every line for the host starts with "PC ".  Phase 1 never ends by itself:
# the host cuts the power (kill -9 qemu) after a random "PC STEP" line.
export PATH=/bin:/usr/bin LC_ALL=C PYTHONDONTWRITEBYTECODE=1
PY=/usr/bin/python3
FD=/opt/fstrack
STATE=/mnt/.fstrack-state
SOCK=/run/fstrackd.sock
DMSETUP=/usr/sbin/dmsetup
export DM_DISABLE_UDEV=1
phase='' ops=300 procs=3 seed=1 since='' state=same commit=5
cache=keep cut=0 order=data,state
for w in $(cat /proc/cmdline); do
	case $w in
	pc.phase=*) phase=${w#*=} ;;
	pc.ops=*) ops=${w#*=} ;;
	pc.procs=*) procs=${w#*=} ;;
	pc.seed=*) seed=${w#*=} ;;
	pc.since=*) since=${w#*=} ;;
	pc.state=*) state=${w#*=} ;;
	pc.commit=*) commit=${w#*=} ;;
	pc.cache=*) cache=${w#*=} ;;
	pc.cut=*) cut=${w#*=} ;;
	pc.order=*) order=${w#*=} ;;
	esac
done

halt_now() {
	sync
	echo "PC HALT"
	reboot -f
	sleep 10
}
err() {
	echo "PC ERROR $*"
	halt_now
}
# herr: the harness itself is broken (never the product's fault).
herr() {
	echo "PC HERROR $*"
	halt_now
}

# dm_logged NAME DEV LOGDEV: a log-writes target NAME on DEV logging to
# LOGDEV; sets DMDEV to its /dev/dm-N node.  It must pass flushes and FUA
# down (a volatile write cache as seen by the guest): otherwise the block
# layer drops them above the target, the log has no flush in it and the
# replay would lose writes that the guest rightly thought durable.
dm_logged() {
	n=0
	while { [ ! -b "$2" ] || [ ! -b "$3" ]; } && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	sz=$(blockdev --getsz "$2") || herr "blockdev --getsz $2"
	$DMSETUP --noudevsync create "$1" --table "0 $sz log-writes $2 $3" ||
		herr "dmsetup create $1"
	minor=$($DMSETUP info -c --noheadings -o minor "$1" | tr -d ' ') ||
		herr "dmsetup info $1"
	DMDEV=/dev/dm-$minor
	n=0
	while [ ! -b "$DMDEV" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	[ -b "$DMDEV" ] || herr "no $DMDEV"
	wc=$(cat "/sys/block/dm-$minor/queue/write_cache")
	[ "$wc" = "write back" ] || herr "$1: write_cache is '$wc', not 'write back'"
	# Stable pages: a page under writeback is not changed before the write
	# completes, so that the copy the target logs (taken at submission) is
	# what the disk got (replaylog.py check compares them).
	echo 1 >"/sys/block/dm-$minor/queue/stable_writes" ||
		herr "$1: cannot set stable_writes"
	echo "$sz" >"/run/dm-$1.size"
	echo "PC DM $1 $2 log $3 $DMDEV $sz sectors"
}

# freeze STEP: the power cut of the cache=lose mode (see the header), at
# the acknowledged step STEP.  (The workload may go on in memory while the
# disks are suspended; nothing of that reaches them.)
freeze() {
	list=
	for d in $(echo "$order" | tr , ' '); do
		[ -f "/run/dm-pc$d.size" ] && list="$list pc$d"
	done
	st=
	for d in $list; do
		st="$st $d: $($DMSETUP status "$d")"
		$DMSETUP --noudevsync suspend --nolockfs --noflush "$d" ||
			herr "dmsetup suspend $d"
	done
	p2=$(cat /run/progress 2>/dev/null || echo 0)
	for d in $list; do
		$DMSETUP load "$d" --table "0 $(cat "/run/dm-$d.size") error" ||
			herr "dmsetup load $d"
		$DMSETUP --noudevsync resume "$d" || herr "dmsetup resume $d"
	done
	echo "PC FROZEN $1 (steps done when suspended: $p2;$st)"
	while :; do sleep 1; echo "PC IDLE"; done
}

mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs tmp /tmp
# commit=N: ext4 journal commit interval in phase 1 (the daemon's fsyncs
# force commits too when its state dir is on this filesystem).
DATADEV=/dev/vda STATEDEV=/dev/vdd
if [ "$cache" = lose ] && [ "$phase" = 1 ]; then
	dm_logged pcdata /dev/vda /dev/vde
	DATADEV=$DMDEV
	if [ "$state" = separate ]; then
		dm_logged pcstate /dev/vdd /dev/vdf
		STATEDEV=$DMDEV
	fi
fi
mount -t ext4 -o "commit=$commit" "$DATADEV" /mnt || err "cannot mount the data disk"
mount -t ext4 /dev/vdc /results || err "cannot mount the results disk"
if [ "$state" = separate ]; then
	# The state dir on a disk of its own (vdd), not on the tracked fs.
	n=0
	while [ ! -b /dev/vdd ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	mkdir -p /run/state
	mount -t ext4 "$STATEDEV" /run/state || err "cannot mount the state disk"
	STATE=/run/state/fstrack
fi
echo "PC MOUNTED phase $phase $(date -u +%FT%T) $(cat /proc/uptime)"

# start_daemon: fstrackd in the foreground, in the background of this
# shell; stderr on the console; wait until `fstrack status` answers.
start_daemon() {
	$FD/fstrackd -f --state-dir $STATE --socket $SOCK /mnt \
		</dev/null >/dev/console 2>&1 &
	DPID=$!
	n=0
	while ! $FD/fstrack -s $SOCK status >/tmp/status.out 2>&1; do
		kill -0 $DPID 2>/dev/null || err "fstrackd exited during start-up"
		n=$((n + 1))
		[ $n -lt 1200 ] || err "fstrackd not ready after 120 s"
		sleep 0.1
	done
	echo "PC DAEMON-READY pid $DPID after $n polls"
}

case $phase in
1)
	start_daemon
	$FD/fstrack -s $SOCK snapshot >/tmp/snap.out 2>&1 ||
		err "fstrack snapshot failed: $(cat /tmp/snap.out)"
	N=$(tail -n 1 /tmp/snap.out)
	echo "$N" >/results/since
	echo "PC SNAP $N"
	sync
	$PY $FD/oracle.py record /mnt /results/before.json --exclude $STATE ||
		err "oracle record (before) failed"
	sync
	echo "PC BEFORE-RECORDED"
	# Read every file (twice) first: every directory is then armed and
	# silent (strict mode, perm.c), so the workload's writes to existing
	# files are not held, and only the arms can report them after the cut.
	find /mnt/tree -type f -exec cat {} + >/dev/null 2>&1
	find /mnt/tree -type f -exec cat {} + >/dev/null 2>&1
	echo "PC READ-ALL"
	# Write dirty data back after 1 s instead of 30 s, every 0.2 s: the
	# workload's file data reaches the disk within a cycle, as plain
	# writes that only the next flush makes durable (what a lost write
	# cache can lose), not only journal commits and the daemon's fsyncs.
	echo 100 >/proc/sys/vm/dirty_expire_centisecs
	echo 20 >/proc/sys/vm/dirty_writeback_centisecs
	$PY $FD/workload.py /mnt/tree --procs "$procs" --ops "$ops" \
		--seed "$seed" --progress-file /run/progress \
		>/run/workload.out 2>&1 &
	WPID=$!
	last=0
	while kill -0 $WPID 2>/dev/null; do
		p=$(cat /run/progress 2>/dev/null || echo 0)
		if [ "${p:-0}" -gt "$last" ]; then
			echo "PC STEP $p"
			last=$p
		fi
		[ "$cache" != lose ] || [ "$last" -lt "$cut" ] || freeze "$last"
		sleep 0.05
	done
	wait $WPID
	wrc=$?
	p=$(cat /run/progress 2>/dev/null || echo 0)
	[ "${p:-0}" -gt "$last" ] && echo "PC STEP $p"
	sed 's/^/PC WORKLOAD /' /run/workload.out
	echo "PC WORKLOAD-END $wrc"
	[ "$cache" != lose ] || freeze "${p:-$last}"
	# Wait for the cut.
	while :; do sleep 1; echo "PC IDLE"; done
	;;
2)
	[ -n "$since" ] || err "no pc.since"
	start_daemon
	echo "PC STATUS-BEGIN"
	cat /tmp/status.out
	echo "PC STATUS-END"
	rc=0
	$FD/fstrack -s $SOCK changed --since "$since" --dirs -0 \
		>/results/reported 2>/results/changed.err || rc=$?
	echo "$rc" >/results/changed.rc
	echo "PC CHANGED-RC $rc $(cat /results/changed.err)"
	$FD/fstrack -s $SOCK changed --since "$since" \
		>/results/changed.txt 2>&1
	$FD/fstrack -s $SOCK status >/results/status.txt 2>&1
	$PY $FD/oracle.py record /mnt /results/after.json --exclude $STATE ||
		err "oracle record (after) failed"
	kill -TERM $DPID
	wait $DPID
	drc=$?
	echo "$drc" >/results/daemon.rc
	echo "PC DAEMON-EXIT $drc"
	umount /mnt || echo "PC WARN cannot unmount /mnt"
	umount /results || echo "PC WARN cannot unmount /results"
	[ "$state" != separate ] || umount /run/state ||
		echo "PC WARN cannot unmount the state disk"
	sync
	echo "PC PHASE2-DONE"
	reboot -f
	sleep 10
	;;
*)
	err "no pc.phase on the kernel command line"
	;;
esac
