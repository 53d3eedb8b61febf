/* reconcile.c -- placeholder */
#include "config.h"
#include "fstrack.h"
int reconcile_start(void) { return 0; }
void reconcile_stop(void) { }
void reconcile_progress(uint64_t *a, uint64_t *b, double *c, double *d) { *a=*b=0; *c=0; *d=-1; }
int reconcile_wait_add(void (*cb)(void *), void *arg) { return -1; }
