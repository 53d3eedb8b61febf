/*
 * fuzz_event.c -- libFuzzer target: the fanotify event decoder (event.c).
 *
 * The input is what one read() of the notification group returned: a run
 * of struct fanotify_event_metadata, each followed by its info records.
 * event_next() must walk it without reading outside the buffer, decode
 * only what lies inside the event, and stop (0 or -1) without looping.
 * The handles it decodes go through the database's blob form and back.
 */
#include "config.h"

#include <string.h>

#include "compat.h"
#include "fstrack.h"
#include "fuzz.h"

/* A decoded handle is usable: in range, and the same after a blob trip. */
static void
fuzz_check_handle(const struct fst_handle *h)
{
	unsigned char		blob[4 + FST_HANDLE_MAX];
	struct fst_handle	back;
	size_t			len;

	FUZZ_CHECK(h->len >= 1 && h->len <= FST_HANDLE_MAX);
	handle_to_blob(h, blob, &len);
	FUZZ_CHECK(len == 4 + h->len);
	FUZZ_CHECK(handle_from_blob(&back, blob, len) == 0);
	FUZZ_CHECK(handle_equal(h, &back));
	FUZZ_CHECK(handle_hash(NULL, h) == handle_hash(NULL, &back));
}

/* A name decoded from buf lies in it, NUL-terminated, and is not empty. */
static void
fuzz_check_name(const char *name, const uint8_t *buf, size_t len)
{
	const uint8_t	*p = (const uint8_t *)name;

	FUZZ_CHECK(p >= buf && p < buf + len);
	FUZZ_CHECK(memchr(p, '\0', buf + len - p) != NULL);
	FUZZ_CHECK(name[0] != '\0');
}

/* Nothing to set up. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

/* Decode every event of one read() buffer. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fst_event	ev;
	struct fst_handle	h;
	size_t			off = 0, prev;
	int			r, n = 0;

	for (;;) {
		prev = off;
		r = event_next(data, size, &off, &ev);
		FUZZ_CHECK(r == 1 || r == 0 || r == -1);
		if (r != 1) {
			FUZZ_CHECK(off == prev);
			FUZZ_CHECK(r == -1 || off == size);
			break;
		}
		/* Progress: every event is at least a metadata record. */
		FUZZ_CHECK(off >= prev + sizeof(struct fanotify_event_metadata));
		FUZZ_CHECK(off <= size);
		FUZZ_CHECK(n++ < (int)(size / sizeof(struct fanotify_event_metadata)));
		if (ev.has_dir)
			fuzz_check_handle(&ev.dir);
		if (ev.has_child)
			fuzz_check_handle(&ev.child);
		if (ev.name != NULL) {
			FUZZ_CHECK(ev.has_dir);
			fuzz_check_name(ev.name, data + prev, off - prev);
		}
		FUZZ_CHECK(ev.has_rename == 0 || ev.has_rename == 3);
		if (ev.has_rename) {
			fuzz_check_handle(&ev.old_dir);
			fuzz_check_handle(&ev.new_dir);
			fuzz_check_name(ev.old_name, data + prev, off - prev);
			fuzz_check_name(ev.new_name, data + prev, off - prev);
		}
		(void)event_mask_to_kinds(ev.mask);
	}
	/* The same bytes as a handle from the database. */
	if (handle_from_blob(&h, data, size) == 0) {
		FUZZ_CHECK(size >= 5 && size - 4 == h.len);
		fuzz_check_handle(&h);
	} else
		FUZZ_CHECK(size < 5 || size - 4 > FST_HANDLE_MAX);
	return 0;
}
