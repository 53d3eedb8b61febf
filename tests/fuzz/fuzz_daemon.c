/*
 * fuzz_daemon.c -- the parts of fstrackd that the control fuzz target's
 * daemon does not have.
 *
 * That daemon tracks no filesystem: it has no notification group
 * (notify.c), no permission group (perm.c), no start-up reconcile pass
 * (reconcile.c), and no tracked filesystem on which a file could be open
 * for writing (openscan.c).  These stand in for those files, answering
 * what the real ones answer in that state, without touching the machine:
 * nothing to drain, no marks to flush, no pass running, no writer found.
 * Everything else -- control.c, daemon.c, the store and its writer
 * thread on a scratch database -- is the real code, linked from the
 * daemon's libraries (whose members for these files are then not linked;
 * the global state comes with them, src/fstd.c).
 */
#include "config.h"

#include "fstrack.h"

/* No notification group: nothing is queued. */
void
notify_drain(void)
{
}

/* No notification group: no quiet marks to flush. */
void
notify_quiet_flush(void)
{
}

/* No notification group: nothing to resume. */
void
notify_quiet_resume(void)
{
}

/* No permission group: no ignore marks to flush, nobody held. */
void
perm_new_snapshot(int64_t id)
{
}

/* No permission group: nobody waits. */
uint64_t
perm_pending(void)
{
	return 0;
}

/* No tracked filesystem: no file on one is open for writing. */
int
openscan_writers(openscan_cb cb, void *arg)
{
	return 0;
}

/* No reconcile pass is running (fstd.reconciling stays 0). */
int
reconcile_wait_add(void (*cb)(void *), void *arg)
{
	return -1;
}

/* No reconcile pass ran. */
void
reconcile_progress(uint64_t *scanned, uint64_t *recorded, double *rate,
    double *eta)
{
	*scanned = *recorded = 0;
	*rate = 0;
	*eta = -1;
}
