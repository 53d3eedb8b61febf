/*
 * check_event.c -- event_next() on hand-built fanotify records, and the
 * handle helpers of event.c.
 *
 * An event is struct fanotify_event_metadata followed by info records:
 * struct fanotify_event_info_header (type, pad, len), the fsid, a struct
 * file_handle (handle_bytes, handle_type, f_handle[]) and, for the *_NAME
 * types, a NUL-terminated name, padded to 4 bytes as the kernel does.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "fstrack.h"
#include "unit.h"

struct evbuf {
	unsigned char	b[8192];
	size_t		len;
	size_t		start;		/* offset of the event being built */
};

static void
eb_init(struct evbuf *e)
{
	memset(e, 0, sizeof *e);
}

/* Start an event: metadata with event_len filled in by eb_end(). */
static void
eb_begin(struct evbuf *e, uint64_t mask, int32_t pid)
{
	struct fanotify_event_metadata	md;

	memset(&md, 0, sizeof md);
	md.vers = FANOTIFY_METADATA_VERSION;
	md.metadata_len = sizeof md;
	md.mask = mask;
	md.fd = FAN_NOFD;
	md.pid = pid;
	e->start = e->len;
	memcpy(e->b + e->len, &md, sizeof md);
	e->len += sizeof md;
}

/* Change one field of the metadata of the event being built. */
#define EB_SET(e, field, val) do {					\
	struct fanotify_event_metadata m_;				\
	memcpy(&m_, (e)->b + (e)->start, sizeof m_);			\
	m_.field = (val);						\
	memcpy((e)->b + (e)->start, &m_, sizeof m_);			\
} while (0)

static void
eb_end(struct evbuf *e)
{
	struct fanotify_event_metadata	md;

	memcpy(&md, e->b + e->start, sizeof md);
	md.event_len = e->len - e->start;
	memcpy(e->b + e->start, &md, sizeof md);
}

/* Set the 16-bit len field of the info record at off. */
static void
eb_set_ilen(struct evbuf *e, size_t off, uint16_t len)
{
	memcpy(e->b + off + 2, &len, 2);
}

/* Set handle_bytes of the info record at off. */
static void
eb_set_hbytes(struct evbuf *e, size_t off, uint32_t n)
{
	memcpy(e->b + off + 4 + 8, &n, 4);
}

/*
 * Append a fid info record; name NULL for FID/DFID.  Returns the record's
 * offset.
 */
static size_t
eb_info(struct evbuf *e, uint8_t type, const fsid_t *fsid,
    const struct fst_handle *h, const char *name)
{
	size_t		off = e->len, n = 0;
	uint32_t	hb = h->len;
	uint16_t	len;

	e->b[e->len++] = type;
	e->b[e->len++] = 0;
	e->len += 2;				/* len, below */
	memcpy(e->b + e->len, fsid, 8);
	e->len += 8;
	memcpy(e->b + e->len, &hb, 4);
	memcpy(e->b + e->len + 4, &h->type, 4);
	memcpy(e->b + e->len + 8, h->bytes, h->len);
	e->len += 8 + h->len;
	if (name != NULL) {
		n = strlen(name) + 1;
		memcpy(e->b + e->len, name, n);
		e->len += n;
	}
	while ((e->len - off) % 4 != 0)
		e->b[e->len++] = 0;
	len = e->len - off;
	eb_set_ilen(e, off, len);
	return off;
}

static fsid_t	fsid1 = { { 0x11223344, 0x55667788 } };
static fsid_t	fsid2 = { { 0x0a0b0c0d, 0x01020304 } };

static struct fst_handle
mkhandle(int32_t type, uint32_t len, unsigned char seed)
{
	struct fst_handle	h;
	uint32_t		i;

	memset(&h, 0, sizeof h);
	h.type = type;
	h.len = len;
	for (i = 0; i < len; i++)
		h.bytes[i] = (unsigned char)(seed + i * 7);
	return h;
}

static void
assert_handle(const struct fst_handle *got, const struct fst_handle *want)
{
	ck_assert_int_eq(got->type, want->type);
	ck_assert_uint_eq(got->len, want->len);
	ck_assert_mem_eq(got->bytes, want->bytes, want->len);
}

/* ------------------------------------------------------------------ */

START_TEST(test_dfid_name)
{
	struct evbuf		e;
	struct fst_event	ev;
	struct fst_handle	d = mkhandle(1, 8, 0x40);
	size_t			off = 0;

	eb_init(&e);
	eb_begin(&e, FAN_CREATE | FAN_ONDIR, 4242);
	eb_info(&e, FAN_EVENT_INFO_TYPE_DFID_NAME, &fsid1, &d, "hello.txt");
	eb_end(&e);

	ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), 1);
	ck_assert_uint_eq(off, e.len);
	ck_assert_uint_eq(ev.mask, FAN_CREATE | FAN_ONDIR);
	ck_assert_int_eq(ev.pid, 4242);
	ck_assert_int_eq(ev.fd, FAN_NOFD);
	ck_assert_mem_eq(&ev.fsid, &fsid1, sizeof fsid1);
	ck_assert_int_eq(ev.has_dir, 1);
	assert_handle(&ev.dir, &d);
	ck_assert_ptr_nonnull(ev.name);
	ck_assert_str_eq(ev.name, "hello.txt");
	/* The name points into the buffer: no copy, no allocation. */
	ck_assert((const unsigned char *)ev.name > e.b &&
	    (const unsigned char *)ev.name < e.b + e.len);
	ck_assert_int_eq(ev.has_child, 0);
	ck_assert_int_eq(ev.has_rename, 0);
	/* End of the buffer. */
	ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), 0);
	ck_assert_uint_eq(off, e.len);
}
END_TEST

START_TEST(test_dfid_name_and_fid)
{
	struct evbuf		e;
	struct fst_event	ev;
	struct fst_handle	d = mkhandle(0x81, 12, 1), c = mkhandle(0x81, 12, 99);
	size_t			off = 0;

	eb_init(&e);
	eb_begin(&e, FAN_MODIFY, 7);
	eb_info(&e, FAN_EVENT_INFO_TYPE_DFID_NAME, &fsid2, &d, "f");
	eb_info(&e, FAN_EVENT_INFO_TYPE_FID, &fsid2, &c, NULL);
	eb_end(&e);

	ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), 1);
	ck_assert_uint_eq(ev.mask, FAN_MODIFY);
	ck_assert_mem_eq(&ev.fsid, &fsid2, sizeof fsid2);
	ck_assert_int_eq(ev.has_dir, 1);
	assert_handle(&ev.dir, &d);
	ck_assert_str_eq(ev.name, "f");
	ck_assert_int_eq(ev.has_child, 1);
	assert_handle(&ev.child, &c);
	ck_assert_int_eq(ev.has_rename, 0);
}
END_TEST

START_TEST(test_dfid_without_name)
{
	struct evbuf		e;
	struct fst_event	ev;
	struct fst_handle	d = mkhandle(1, 8, 3);
	size_t			off = 0;

	eb_init(&e);
	eb_begin(&e, FAN_ATTRIB | FAN_ONDIR, 1);
	eb_info(&e, FAN_EVENT_INFO_TYPE_DFID, &fsid1, &d, NULL);
	eb_end(&e);
	ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), 1);
	ck_assert_int_eq(ev.has_dir, 1);
	assert_handle(&ev.dir, &d);
	ck_assert_ptr_null(ev.name);
}
END_TEST

START_TEST(test_rename)
{
	struct evbuf		e;
	struct fst_event	ev;
	struct fst_handle	o = mkhandle(1, 8, 10), n = mkhandle(1, 8, 20);
	struct fst_handle	c = mkhandle(1, 8, 30);
	size_t			off = 0;

	eb_init(&e);
	eb_begin(&e, FAN_RENAME | FAN_ONDIR, 99);
	eb_info(&e, FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, &fsid1, &o, "old name");
	eb_info(&e, FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, &fsid1, &n, "new\nname");
	eb_info(&e, FAN_EVENT_INFO_TYPE_FID, &fsid1, &c, NULL);
	eb_end(&e);

	ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), 1);
	ck_assert_uint_eq(ev.mask, FAN_RENAME | FAN_ONDIR);
	ck_assert_int_eq(ev.has_rename, 3);
	assert_handle(&ev.old_dir, &o);
	assert_handle(&ev.new_dir, &n);
	ck_assert_str_eq(ev.old_name, "old name");
	ck_assert_str_eq(ev.new_name, "new\nname");
	ck_assert_int_eq(ev.has_child, 1);
	assert_handle(&ev.child, &c);
	ck_assert_int_eq(ev.has_dir, 0);
}
END_TEST

START_TEST(test_several_events)
{
	struct evbuf		e;
	struct fst_event	ev;
	struct fst_handle	h[3];
	static const char	*names[3] = { "a", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "ccc" };
	static const uint64_t	 masks[3] = { FAN_CREATE, FAN_DELETE, FAN_CLOSE_WRITE };
	size_t			off = 0, ends[3];
	int			i;

	eb_init(&e);
	for (i = 0; i < 3; i++) {
		h[i] = mkhandle(i + 1, 8 + 4 * i, 16 * i);
		eb_begin(&e, masks[i], 100 + i);
		eb_info(&e, FAN_EVENT_INFO_TYPE_DFID_NAME, i == 1 ? &fsid2 :
		    &fsid1, &h[i], names[i]);
		eb_end(&e);
		ends[i] = e.len;
	}
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), 1);
		ck_assert_uint_eq(off, ends[i]);
		ck_assert_uint_eq(ev.mask, masks[i]);
		ck_assert_int_eq(ev.pid, 100 + i);
		ck_assert_mem_eq(&ev.fsid, i == 1 ? &fsid2 : &fsid1,
		    sizeof(fsid_t));
		assert_handle(&ev.dir, &h[i]);
		ck_assert_str_eq(ev.name, names[i]);
	}
	ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), 0);
}
END_TEST

START_TEST(test_unknown_info_skipped)
{
	struct evbuf		e;
	struct fst_event	ev;
	struct fst_handle	d = mkhandle(1, 8, 5);
	size_t			off = 0, rec;

	eb_init(&e);
	eb_begin(&e, FAN_CREATE, 1);
	/* a pidfd record: header + 4-byte pidfd */
	rec = e.len;
	e.b[e.len++] = FAN_EVENT_INFO_TYPE_PIDFD;
	e.b[e.len++] = 0;
	e.len += 2;
	memset(e.b + e.len, 0xff, 4);
	e.len += 4;
	eb_set_ilen(&e, rec, 8);
	eb_info(&e, FAN_EVENT_INFO_TYPE_DFID_NAME, &fsid1, &d, "x");
	eb_end(&e);
	ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), 1);
	ck_assert_str_eq(ev.name, "x");
	assert_handle(&ev.dir, &d);
}
END_TEST

START_TEST(test_largest_handle)
{
	struct evbuf		e;
	struct fst_event	ev;
	struct fst_handle	d = mkhandle(1, FST_HANDLE_MAX, 5);
	size_t			off = 0;

	eb_init(&e);
	eb_begin(&e, FAN_CREATE, 1);
	eb_info(&e, FAN_EVENT_INFO_TYPE_DFID_NAME, &fsid1, &d, "x");
	eb_end(&e);
	ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), 1);
	assert_handle(&ev.dir, &d);
}
END_TEST

/* --- malformed ------------------------------------------------------ */

/* One well-formed DFID_NAME event; returns the offset of its info record. */
static size_t
good_event(struct evbuf *e)
{
	struct fst_handle	d = mkhandle(1, 8, 0x40);
	size_t			rec;

	eb_init(e);
	eb_begin(e, FAN_CREATE, 1);
	rec = eb_info(e, FAN_EVENT_INFO_TYPE_DFID_NAME, &fsid1, &d, "name");
	eb_end(e);
	return rec;
}

/*
 * Decode from a heap copy of exactly len bytes, so that reading past the
 * end shows under valgrind.
 */
static int
decode_exact(const void *buf, size_t len)
{
	struct fst_event	 ev;
	size_t			 off = 0;
	void			*copy;
	int			 rc;

	ck_assert_ptr_nonnull(copy = malloc(len ? len : 1));
	memcpy(copy, buf, len);
	rc = event_next(copy, len, &off, &ev);
	free(copy);
	return rc;
}

static int
decode(struct evbuf *e)
{
	struct fst_event	ev;
	size_t			off = 0;

	return event_next(e->b, e->len, &off, &ev);
}

START_TEST(test_good_event_is_good)
{
	struct evbuf	e;

	good_event(&e);
	ck_assert_int_eq(decode(&e), 1);	/* the baseline of the tests below */
}
END_TEST

START_TEST(test_bad_truncated_metadata)
{
	struct evbuf		e;
	struct fst_event	ev;
	size_t			off = 0, one;

	good_event(&e);
	ck_assert_int_eq(decode_exact(e.b, sizeof(struct fanotify_event_metadata)
	    - 1), -1);
	ck_assert_int_eq(decode_exact(e.b, 1), -1);
	ck_assert_int_eq(decode_exact(e.b, 0), 0);	/* nothing: the end */

	/* A good event followed by a truncated one. */
	good_event(&e);
	one = e.len;
	memcpy(e.b + one, e.b, 10);
	e.len = one + 10;
	ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), 1);
	ck_assert_uint_eq(off, one);
	ck_assert_int_eq(event_next(e.b, e.len, &off, &ev), -1);
}
END_TEST

START_TEST(test_bad_event_len_past_buffer)
{
	struct evbuf	e;

	good_event(&e);
	EB_SET(&e, event_len, e.len + 4);
	ck_assert_int_eq(decode(&e), -1);
	/* or the buffer is shorter than the event says */
	good_event(&e);
	e.len -= 4;
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_event_len_below_metadata)
{
	struct evbuf	e;

	good_event(&e);
	EB_SET(&e, event_len, sizeof(struct fanotify_event_metadata) - 4);
	ck_assert_int_eq(decode(&e), -1);
	good_event(&e);
	EB_SET(&e, event_len, 0);
	ck_assert_int_eq(decode(&e), -1);
	/* metadata_len itself too small for the metadata */
	good_event(&e);
	EB_SET(&e, metadata_len, 8);
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_version)
{
	struct evbuf	e;

	good_event(&e);
	EB_SET(&e, vers, FANOTIFY_METADATA_VERSION + 1);
	ck_assert_int_eq(decode(&e), -1);
	EB_SET(&e, vers, 0);
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_info_len_zero)
{
	struct evbuf	e;
	size_t		rec;

	rec = good_event(&e);
	eb_set_ilen(&e, rec, 0);
	ck_assert_int_eq(decode(&e), -1);
	rec = good_event(&e);
	eb_set_ilen(&e, rec, 2);		/* shorter than its own header */
	ck_assert_int_eq(decode(&e), -1);
	/* the same for an info type the decoder skips: must not loop */
	rec = good_event(&e);
	e.b[rec] = FAN_EVENT_INFO_TYPE_PIDFD;
	eb_set_ilen(&e, rec, 0);
	ck_assert_int_eq(decode(&e), -1);
	eb_set_ilen(&e, rec, 3);
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_info_len_past_event)
{
	struct evbuf	e;
	size_t		rec;

	rec = good_event(&e);
	eb_set_ilen(&e, rec, e.len - rec + 4);
	ck_assert_int_eq(decode(&e), -1);
	/* ... even when the buffer has more bytes after the event */
	rec = good_event(&e);
	eb_set_ilen(&e, rec, e.len - rec + 4);
	memset(e.b + e.len, 0, 64);
	e.len += 64;
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_partial_info_header)
{
	struct evbuf	e;

	/* event_len leaves 2 bytes after the metadata: not even a header */
	eb_init(&e);
	eb_begin(&e, FAN_CREATE, 1);
	e.b[e.len++] = FAN_EVENT_INFO_TYPE_DFID_NAME;
	e.b[e.len++] = 0;
	eb_end(&e);
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_info_too_short_for_fsid)
{
	struct evbuf	e;

	eb_init(&e);
	eb_begin(&e, FAN_CREATE, 1);
	e.b[e.len] = FAN_EVENT_INFO_TYPE_DFID_NAME;
	eb_set_ilen(&e, e.len, 8);		/* header + half an fsid */
	e.len += 8;
	eb_end(&e);
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_handle_bytes)
{
	struct evbuf	e;
	size_t		rec;
	uint16_t	ilen;

	/* one more than the record holds */
	rec = good_event(&e);
	memcpy(&ilen, e.b + rec + 2, 2);
	eb_set_hbytes(&e, rec, ilen - (4 + 8 + 8) + 1);
	ck_assert_int_eq(decode(&e), -1);
	/* a FID record (no name after the handle to trip over) */
	{
		struct fst_handle c = mkhandle(1, 8, 2);

		eb_init(&e);
		eb_begin(&e, FAN_MODIFY, 1);
		rec = eb_info(&e, FAN_EVENT_INFO_TYPE_FID, &fsid1, &c, NULL);
		eb_info(&e, FAN_EVENT_INFO_TYPE_DFID_NAME, &fsid1, &c, "n");
		eb_end(&e);
		ck_assert_int_eq(decode(&e), 1);
		eb_set_hbytes(&e, rec, 12);
		ck_assert_int_eq(decode(&e), -1);
	}
	/* far more than the record holds */
	rec = good_event(&e);
	eb_set_hbytes(&e, rec, 0xffffffffu);
	ck_assert_int_eq(decode(&e), -1);
	/* zero */
	rec = good_event(&e);
	eb_set_hbytes(&e, rec, 0);
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_handle_larger_than_max)
{
	struct evbuf		e;
	struct fst_handle	d = mkhandle(1, FST_HANDLE_MAX, 0);
	size_t			rec;

	/* A record with room for FST_HANDLE_MAX + 8 bytes claiming all of it. */
	eb_init(&e);
	eb_begin(&e, FAN_CREATE, 1);
	rec = eb_info(&e, FAN_EVENT_INFO_TYPE_FID, &fsid1, &d, NULL);
	memset(e.b + e.len, 0, 8);
	e.len += 8;
	eb_set_ilen(&e, rec, e.len - rec);
	eb_set_hbytes(&e, rec, FST_HANDLE_MAX + 8);
	eb_end(&e);
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_handle_header_truncated)
{
	struct evbuf	e;

	/* header + fsid + 4 bytes: handle_bytes but no handle_type */
	eb_init(&e);
	eb_begin(&e, FAN_CREATE, 1);
	e.b[e.len] = FAN_EVENT_INFO_TYPE_FID;
	eb_set_ilen(&e, e.len, 16);
	memcpy(e.b + e.len + 4, &fsid1, 8);
	e.b[e.len + 12] = 1;
	e.len += 16;
	eb_end(&e);
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_name_not_terminated)
{
	struct evbuf		e;
	struct fst_handle	d = mkhandle(1, 8, 1);
	size_t			rec;

	/* "namX" filling the record exactly, no NUL */
	eb_init(&e);
	eb_begin(&e, FAN_CREATE, 1);
	rec = eb_info(&e, FAN_EVENT_INFO_TYPE_DFID_NAME, &fsid1, &d, "abc");
	/* record: 4 + 8 + 8 + 8 = 28, then "abc\0" = 32 */
	ck_assert_uint_eq(e.len - rec, 32);
	e.b[e.len - 1] = 'X';
	eb_end(&e);
	ck_assert_int_eq(decode(&e), -1);

	/* The NUL is in the buffer, but after the record's end. */
	eb_init(&e);
	eb_begin(&e, FAN_CREATE, 1);
	rec = eb_info(&e, FAN_EVENT_INFO_TYPE_DFID_NAME, &fsid1, &d, "abcdef");
	/* "abcdef\0" + 1 pad = 8: cut the record to "abcd" */
	eb_set_ilen(&e, rec, e.len - rec - 4);
	e.len -= 4;
	eb_end(&e);
	e.b[e.len] = 'e';
	e.b[e.len + 1] = '\0';
	e.len += 4;		/* bytes after the event, a well-formed NUL there */
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_name_missing_or_empty)
{
	struct evbuf		e;
	struct fst_handle	d = mkhandle(1, 8, 1);

	/* DFID_NAME without any name bytes */
	eb_init(&e);
	eb_begin(&e, FAN_CREATE, 1);
	eb_info(&e, FAN_EVENT_INFO_TYPE_DFID_NAME, &fsid1, &d, NULL);
	eb_end(&e);
	ck_assert_int_eq(decode(&e), -1);
	/* an empty name (the kernel reports "." for the directory itself) */
	eb_init(&e);
	eb_begin(&e, FAN_CREATE, 1);
	eb_info(&e, FAN_EVENT_INFO_TYPE_DFID_NAME, &fsid1, &d, "");
	eb_end(&e);
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

START_TEST(test_bad_rename_one_side)
{
	struct evbuf		e;
	struct fst_handle	o = mkhandle(1, 8, 10);

	eb_init(&e);
	eb_begin(&e, FAN_RENAME, 1);
	eb_info(&e, FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, &fsid1, &o, "old");
	eb_end(&e);
	ck_assert_int_eq(decode(&e), -1);

	eb_init(&e);
	eb_begin(&e, FAN_RENAME, 1);
	eb_info(&e, FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, &fsid1, &o, "new");
	eb_end(&e);
	ck_assert_int_eq(decode(&e), -1);

	/* a rename side with a bad name spoils the whole event */
	eb_init(&e);
	eb_begin(&e, FAN_RENAME, 1);
	eb_info(&e, FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, &fsid1, &o, "old");
	eb_info(&e, FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, &fsid1, &o, "");
	eb_end(&e);
	ck_assert_int_eq(decode(&e), -1);
}
END_TEST

/* --- kinds and blobs ------------------------------------------------- */

START_TEST(test_mask_to_kinds)
{
	ck_assert_uint_eq(event_mask_to_kinds(0), 0);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_CREATE), FST_M_CREATED);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_DELETE), FST_M_DELETED);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_DELETE_SELF), FST_M_DELETED);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_MODIFY), FST_M_MODIFIED);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_ATTRIB), FST_M_ATTRIB);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_MOVED_FROM),
	    FST_M_MOVED_FROM);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_MOVED_TO), FST_M_MOVED_TO);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_CLOSE_WRITE),
	    FST_M_CLOSED_WRITE);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_CREATE | FAN_ONDIR),
	    FST_M_CREATED | FST_M_ISDIR);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_MODIFY | FAN_ATTRIB |
	    FAN_CLOSE_WRITE), FST_M_MODIFIED | FST_M_ATTRIB |
	    FST_M_CLOSED_WRITE);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_MOVED_FROM | FAN_MOVED_TO),
	    FST_M_MOVED_FROM | FST_M_MOVED_TO);
	/* reads and non-writing closes are not changes */
	ck_assert_uint_eq(event_mask_to_kinds(FAN_ACCESS | FAN_OPEN |
	    FAN_CLOSE_NOWRITE), 0);
	ck_assert_uint_eq(event_mask_to_kinds(FAN_Q_OVERFLOW), 0);
}
END_TEST

START_TEST(test_blob_round_trip)
{
	static const int32_t	 types[] = { 1, 0x81, -1, INT32_MIN, 0x01020304 };
	static const uint32_t	 lens[] = { 1, 8, 12, 20, FST_HANDLE_MAX };
	unsigned char		 blob[4 + FST_HANDLE_MAX];
	struct fst_handle	 h, back;
	size_t			 n, i, j;

	for (i = 0; i < sizeof types / sizeof *types; i++) {
		for (j = 0; j < sizeof lens / sizeof *lens; j++) {
			h = mkhandle(types[i], lens[j], (unsigned char)(i * 31 + j));
			n = 0;
			handle_to_blob(&h, blob, &n);
			ck_assert_uint_eq(n, 4 + lens[j]);
			memset(&back, 0xaa, sizeof back);
			ck_assert_int_eq(handle_from_blob(&back, blob, n), 0);
			assert_handle(&back, &h);
			ck_assert(handle_equal(&back, &h));
		}
	}
	/* the documented layout: type little-endian, then the bytes */
	h = mkhandle(0x01020304, 2, 0);
	h.bytes[0] = 0xde;
	h.bytes[1] = 0xad;
	handle_to_blob(&h, blob, &n);
	ck_assert_uint_eq(n, 6);
	ck_assert_mem_eq(blob, "\x04\x03\x02\x01\xde\xad", 6);
}
END_TEST

START_TEST(test_blob_bad)
{
	unsigned char		blob[4 + FST_HANDLE_MAX + 8];
	struct fst_handle	h;
	size_t			n;

	memset(blob, 1, sizeof blob);
	for (n = 0; n <= 4; n++)
		ck_assert_int_eq(handle_from_blob(&h, blob, n), -1);
	ck_assert_int_eq(handle_from_blob(&h, blob, 4 + FST_HANDLE_MAX), 0);
	ck_assert_int_eq(handle_from_blob(&h, blob, 4 + FST_HANDLE_MAX + 1),
	    -1);
	ck_assert_int_eq(handle_from_blob(&h, blob, sizeof blob), -1);
}
END_TEST

START_TEST(test_handle_equal)
{
	struct fst_handle	a = mkhandle(1, 8, 3), b = a;

	ck_assert(handle_equal(&a, &b));
	b.type = 2;
	ck_assert(!handle_equal(&a, &b));
	b = a;
	b.len = 7;
	ck_assert(!handle_equal(&a, &b));
	b = a;
	b.bytes[7] ^= 1;
	ck_assert(!handle_equal(&a, &b));
	/* bytes beyond len do not matter */
	b = a;
	b.bytes[100] ^= 1;
	ck_assert(handle_equal(&a, &b));
}
END_TEST

Suite *
event_suite(void)
{
	Suite	*s = suite_create("event");
	TCase	*tc;

	tc = tcase_create("decode");
	tcase_add_test(tc, test_dfid_name);
	tcase_add_test(tc, test_dfid_name_and_fid);
	tcase_add_test(tc, test_dfid_without_name);
	tcase_add_test(tc, test_rename);
	tcase_add_test(tc, test_several_events);
	tcase_add_test(tc, test_unknown_info_skipped);
	tcase_add_test(tc, test_largest_handle);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_good_event_is_good);
	tcase_add_test(tc, test_bad_truncated_metadata);
	tcase_add_test(tc, test_bad_event_len_past_buffer);
	tcase_add_test(tc, test_bad_event_len_below_metadata);
	tcase_add_test(tc, test_bad_version);
	tcase_add_test(tc, test_bad_info_len_zero);
	tcase_add_test(tc, test_bad_info_len_past_event);
	tcase_add_test(tc, test_bad_partial_info_header);
	tcase_add_test(tc, test_bad_info_too_short_for_fsid);
	tcase_add_test(tc, test_bad_handle_bytes);
	tcase_add_test(tc, test_bad_handle_larger_than_max);
	tcase_add_test(tc, test_bad_handle_header_truncated);
	tcase_add_test(tc, test_bad_name_not_terminated);
	tcase_add_test(tc, test_bad_name_missing_or_empty);
	tcase_add_test(tc, test_bad_rename_one_side);
	suite_add_tcase(s, tc);

	tc = tcase_create("handles");
	tcase_add_test(tc, test_mask_to_kinds);
	tcase_add_test(tc, test_blob_round_trip);
	tcase_add_test(tc, test_blob_bad);
	tcase_add_test(tc, test_handle_equal);
	suite_add_tcase(s, tc);
	return s;
}
