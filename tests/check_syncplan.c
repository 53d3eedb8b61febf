/*
 * check_syncplan.c -- the rules of fstrack-rsync (src/syncplan.c): which
 * records list which directories, when a run must be a full sync, and how
 * entries are written so that rsync reads every name as itself.
 *
 * Each test builds a small tree under a temporary directory ROOT, takes
 * ROOT as the mount point and ROOT/src as SRC, feeds records as fstrackd
 * would store them, and compares the list (sorted, relative to SRC).
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbformat.h"
#include "syncplan.h"
#include "unit.h"

static char	*root;
static char	 src[4096];

/* A fresh ROOT with ROOT/src. */
static void
sp_setup(void)
{
	root = unit_mkdtemp();
	snprintf(src, sizeof src, "%s/src", root);
	ck_assert_int_eq(mkdir(src, 0755), 0);
}

/* Remove ROOT. */
static void
sp_teardown(void)
{
	unit_rmtree(root);
	free(root);
}

/* mkdir -p of rel below SRC. */
static void
mk(const char *rel)
{
	char	p[8192], *s;

	snprintf(p, sizeof p, "%s/%s", src, rel);
	for (s = p + strlen(src) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(p, 0755) == -1)
			ck_assert_int_eq(errno, EEXIST);
		*s = '/';
	}
	if (mkdir(p, 0755) == -1)
		ck_assert_int_eq(errno, EEXIST);
}

/* An absolute path below SRC (rel "" is SRC). */
static const char *
abs_path(const char *rel)
{
	static char	p[8192];

	snprintf(p, sizeof p, "%s%s%s", src, *rel ? "/" : "", rel);
	return p;
}

/* The list of a finished plan, entries joined by '|'. */
static char *
listed(struct syncplan *p)
{
	static char	buf[65536];
	size_t		i;

	buf[0] = '\0';
	for (i = 0; i < syncplan_count(p); i++) {
		if (i > 0)
			strcat(buf, "|");
		strcat(buf, syncplan_entry(p, i));
	}
	return buf;
}

/* A plan on SRC with ROOT as the mount point. */
static struct syncplan *
plan(void)
{
	struct syncplan	*p = syncplan_new(src, root, 0);

	ck_assert_ptr_nonnull(p);
	return p;
}

START_TEST(test_encode_names)
{
	char	buf[64];

	ck_assert_uint_eq(syncplan_encode(".", buf, sizeof buf), 1);
	ck_assert_str_eq(buf, ".");
	syncplan_encode("#hash", buf, sizeof buf);
	ck_assert_str_eq(buf, "./#hash/.");
	syncplan_encode(";semi", buf, sizeof buf);
	ck_assert_str_eq(buf, "./;semi/.");
	syncplan_encode("a/#b", buf, sizeof buf);
	ck_assert_str_eq(buf, "a/#b/.");
	syncplan_encode("-dash", buf, sizeof buf);
	ck_assert_str_eq(buf, "-dash/.");
	syncplan_encode("new\nline\\*?[", buf, sizeof buf);
	ck_assert_str_eq(buf, "new\nline\\*?[/.");
	/* too small a buffer: the length, nothing written */
	memset(buf, 'x', sizeof buf);
	ck_assert_uint_eq(syncplan_encode("#abc", buf, 8), 8);
	ck_assert_int_eq(buf[0], 'x');
}
END_TEST

START_TEST(test_entry_lists_its_directory)
{
	struct syncplan		*p;
	struct syncplan_stats	 st;

	mk("a/b");
	p = plan();
	ck_assert_int_eq(syncplan_add(p, abs_path("a"), "file",
	    FST_M_MODIFIED | FST_M_CLOSED_WRITE), 0);
	ck_assert_int_eq(syncplan_add(p, abs_path("a"), "other",
	    FST_M_CREATED), 0);
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_str_eq(listed(p), "a");
	syncplan_stats(p, &st);
	ck_assert_uint_eq(st.listed, 1);
	syncplan_free(p);
}
END_TEST

START_TEST(test_contents_lists_the_directory_only)
{
	struct syncplan	*p;

	mk("a/b");
	p = plan();
	syncplan_add(p, abs_path("a"), "b", FST_M_CONTENTS | FST_M_ISDIR);
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_str_eq(listed(p), "a/b");
	syncplan_free(p);
}
END_TEST

START_TEST(test_new_subtree_walked)
{
	struct syncplan		*p;
	struct syncplan_stats	 st;
	char			 f[8192];

	mk("a/new/x/y");
	mk("a/new/z");
	snprintf(f, sizeof f, "%s/a/new/x/file", src);
	ck_assert_int_eq(unit_write_file(f, "1", 1), 0);
	snprintf(f, sizeof f, "%s/a/new/link", src);
	ck_assert_int_eq(symlink("x", f), 0);	/* not walked into */
	p = plan();
	syncplan_add(p, abs_path("a"), "new", FST_M_MOVED_TO | FST_M_ISDIR);
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_str_eq(listed(p), "a|a/new|a/new/x|a/new/x/y|a/new/z");
	syncplan_stats(p, &st);
	ck_assert_uint_eq(st.in_new, 4);
	syncplan_free(p);
}
END_TEST

START_TEST(test_new_file_is_not_a_subtree)
{
	struct syncplan	*p;
	char		 f[8192];

	mk("a");
	snprintf(f, sizeof f, "%s/a/file", src);
	ck_assert_int_eq(unit_write_file(f, "1", 1), 0);
	snprintf(f, sizeof f, "%s/a/dirlink", src);
	ck_assert_int_eq(symlink("/", f), 0);
	p = plan();
	syncplan_add(p, abs_path("a"), "file", FST_M_CREATED);
	syncplan_add(p, abs_path("a"), "dirlink", FST_M_CREATED);
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_str_eq(listed(p), "a");
	syncplan_free(p);
}
END_TEST

START_TEST(test_rescanned_dir_is_a_subtree)
{
	struct syncplan	*p;

	mk("r/s");
	p = plan();
	syncplan_add(p, abs_path(""), "r", FST_M_RESCANNED | FST_M_ISDIR);
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_str_eq(listed(p), ".|r|r/s");
	syncplan_free(p);
}
END_TEST

START_TEST(test_dot_record_lists_dir_and_parent)
{
	struct syncplan	*p;

	mk("a/b/c");
	p = plan();
	/* armed after an unclean stop: D itself, and D's entry in its parent */
	syncplan_add(p, abs_path("a/b"), ".", FST_M_ARMED);
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_str_eq(listed(p), "a|a/b");
	syncplan_free(p);
}
END_TEST

START_TEST(test_src_itself)
{
	struct syncplan	*p;

	p = plan();
	/* SRC's own attributes: recorded on its entry in ROOT */
	syncplan_add(p, root, "src", FST_M_ATTRIB | FST_M_ISDIR);
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_str_eq(listed(p), ".");
	syncplan_free(p);
}
END_TEST

START_TEST(test_src_replaced_means_full)
{
	struct syncplan	*p;
	char		 sub[8192];

	/* SRC moved in */
	p = plan();
	ck_assert_int_eq(syncplan_add(p, root, "src", FST_M_MOVED_TO |
	    FST_M_ISDIR), 1);
	ck_assert_ptr_nonnull(syncplan_reason(p));
	ck_assert_ptr_nonnull(strstr(syncplan_reason(p), "replaced"));
	ck_assert_int_eq(syncplan_finish(p), 1);
	syncplan_free(p);

	/* an ancestor of SRC (below the mount point) created */
	mk("deep");
	snprintf(sub, sizeof sub, "%s/deep", src);
	p = syncplan_new(sub, root, 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(syncplan_add(p, root, "src", FST_M_CREATED |
	    FST_M_ISDIR), 1);
	syncplan_free(p);

	/* the mount point itself cannot be replaced; SRC = mount point */
	p = syncplan_new(src, src, 0);
	ck_assert_int_eq(syncplan_add(p, root, "src", FST_M_MOVED_TO |
	    FST_M_ISDIR), 0);
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_ptr_null(syncplan_reason(p));
	syncplan_free(p);

	/* a sibling with a longer name is no ancestor */
	p = syncplan_new(sub, root, 0);
	ck_assert_int_eq(syncplan_add(p, root, "src2", FST_M_CREATED |
	    FST_M_ISDIR), 0);
	ck_assert_int_eq(syncplan_add(p, src, "dee", FST_M_CREATED |
	    FST_M_ISDIR), 0);
	syncplan_free(p);
}
END_TEST

START_TEST(test_gone_and_outside)
{
	struct syncplan		*p;
	struct syncplan_stats	 st;
	char			 f[8192];

	mk("a");
	snprintf(f, sizeof f, "%s/a/nowfile", src);
	ck_assert_int_eq(unit_write_file(f, "1", 1), 0);
	p = plan();
	syncplan_add(p, abs_path("gone"), "f", FST_M_DELETED);
	syncplan_add(p, abs_path("a/nowfile"), "f", FST_M_DELETED);
	syncplan_add(p, root, "elsewhere", FST_M_CREATED);	/* ROOT: out */
	syncplan_add(p, "/", "x", FST_M_CREATED);
	syncplan_add(p, "unresolved", "x", FST_M_CREATED);
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_str_eq(listed(p), "");
	syncplan_stats(p, &st);
	ck_assert_uint_eq(st.gone, 2);
	syncplan_free(p);
}
END_TEST

START_TEST(test_dedup_and_order)
{
	struct syncplan	*p;
	int		 i;
	char		 n[32];

	mk("b");
	mk("a/c");
	mk("a");
	p = plan();
	for (i = 0; i < 5000; i++) {
		snprintf(n, sizeof n, "f%d", i);
		syncplan_add(p, abs_path(i % 2 ? "b" : "a/c"), n, FST_M_CREATED);
		syncplan_add(p, abs_path("a"), "c", FST_M_CONTENTS |
		    FST_M_ISDIR);
	}
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_str_eq(listed(p), "a/c|b");
	syncplan_free(p);
}
END_TEST

START_TEST(test_odd_names_written_whole)
{
	static const char *names[] = { "#hash", ";semi", "-dash", "new\nline",
	    "tab\there", "back\\slash", "*glob?[a]", "sp ace", "\xff\xfe", NULL };
	struct syncplan	*p;
	char		*buf = NULL, want[4096];
	size_t		 len = 0, wlen = 0;
	FILE		*f;
	int		 i;

	for (i = 0; names[i] != NULL; i++)
		mk(names[i]);
	p = plan();
	for (i = 0; names[i] != NULL; i++)
		syncplan_add(p, abs_path(names[i]), "f", FST_M_CREATED);
	ck_assert_int_eq(syncplan_finish(p), 0);
	ck_assert_uint_eq(syncplan_count(p), 9);
	f = open_memstream(&buf, &len);
	ck_assert_int_eq(syncplan_write(p, f), 0);
	fclose(f);
	/* byte order: "#", "*", "-", ";", "b", "n", "s", "t", 0xff */
	{
		static const char *order[] = { "./#hash/.", "*glob?[a]/.",
		    "-dash/.", "./;semi/.", "back\\slash/.", "new\nline/.",
		    "sp ace/.", "tab\there/.", "\xff\xfe/.", NULL };

		for (i = 0; order[i] != NULL; i++) {
			memcpy(want + wlen, order[i], strlen(order[i]) + 1);
			wlen += strlen(order[i]) + 1;
		}
	}
	ck_assert_uint_eq(len, wlen);
	ck_assert_int_eq(memcmp(buf, want, len), 0);
	free(buf);
	syncplan_free(p);
}
END_TEST

START_TEST(test_too_long_counted)
{
	struct syncplan		*p;
	struct syncplan_stats	 st;
	char			 rel[8192], name[256];
	int			 fd, i, nfd;

	/* 20 levels of 250 bytes: > 4095 below SRC */
	memset(name, 'd', 250);
	name[250] = '\0';
	fd = open(src, O_RDONLY | O_DIRECTORY);
	rel[0] = '\0';
	for (i = 0; i < 20; i++) {
		ck_assert_int_eq(mkdirat(fd, name, 0755), 0);
		nfd = openat(fd, name, O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = nfd;
		if (i > 0)
			strcat(rel, "/");
		strcat(rel, name);
	}
	nfd = openat(fd, "f", O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ne(nfd, -1);
	close(nfd);
	close(fd);
	p = plan();
	syncplan_add(p, abs_path(rel), "f", FST_M_CREATED);
	syncplan_add(p, abs_path(rel), "gone", FST_M_CREATED);
	syncplan_add(p, abs_path(name), "f", FST_M_CREATED);
	strcat(rel, "/nodir");
	syncplan_add(p, abs_path(rel), "x", FST_M_CREATED);
	ck_assert_int_eq(syncplan_finish(p), 0);
	syncplan_stats(p, &st);
	/* the directory, and the new entry in it that is there */
	ck_assert_uint_eq(st.too_long, 2);
	ck_assert_uint_eq(st.gone, 1);
	ck_assert_str_eq(listed(p), name);
	syncplan_free(p);
}
END_TEST

START_TEST(test_default_name)
{
	char	buf[80];

	/* printf 'a\0b' | cksum: 3560722768 = 0xd43c5150 */
	syncplan_default_name("a", "b", buf, sizeof buf);
	ck_assert_str_eq(buf, "rsync-b-d43c5150");
	/* printf '/mnt/x\0localhost:/tmp/rdest' | cksum: 3184500999 = 0xbdcfa107 */
	syncplan_default_name("/mnt/x", "localhost:/tmp/rdest", buf,
	    sizeof buf);
	ck_assert_str_eq(buf, "rsync-localhost__tmp_rdest-bdcfa107");
	/* long destinations are cut: the name stays within 64 bytes */
	syncplan_default_name("/s", "/a/very/long/destination/path/that/goes/"
	    "on/and/on/and/on/for/ever", buf, sizeof buf);
	ck_assert_uint_le(strlen(buf), 64);
}
END_TEST

Suite *
syncplan_suite(void)
{
	Suite	*s = suite_create("syncplan");
	TCase	*tc;

	tc = tcase_create("encode");
	tcase_add_test(tc, test_encode_names);
	tcase_add_test(tc, test_default_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("rules");
	tcase_add_checked_fixture(tc, sp_setup, sp_teardown);
	tcase_add_test(tc, test_entry_lists_its_directory);
	tcase_add_test(tc, test_contents_lists_the_directory_only);
	tcase_add_test(tc, test_new_subtree_walked);
	tcase_add_test(tc, test_new_file_is_not_a_subtree);
	tcase_add_test(tc, test_rescanned_dir_is_a_subtree);
	tcase_add_test(tc, test_dot_record_lists_dir_and_parent);
	tcase_add_test(tc, test_src_itself);
	tcase_add_test(tc, test_src_replaced_means_full);
	tcase_add_test(tc, test_gone_and_outside);
	tcase_add_test(tc, test_dedup_and_order);
	tcase_add_test(tc, test_odd_names_written_whole);
	tcase_add_test(tc, test_too_long_counted);
	suite_add_tcase(s, tc);
	return s;
}
