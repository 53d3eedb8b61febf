/*
 * check_config.c -- fstrackd.conf(5) parsing: every directive, every error,
 * and config_load() on real files.  Error messages go to stderr (log.c);
 * only return values and the resulting configuration are checked.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fstrack.h"
#include "unit.h"

/* Parse one line (copied: the parser writes into it). */
static int
parse(struct fst_config *c, const char *text)
{
	char	*line = strdup(text);
	int	 rc;

	rc = config_parse_line(c, line, "test.conf", 7);
	free(line);
	return rc;
}

START_TEST(test_defaults)
{
	struct fst_config	c;

	config_defaults(&c);
	ck_assert_str_eq(c.state_dir, "/var/lib/fstrack");
	ck_assert_str_eq(c.socket_path, "/run/fstrack/fstrackd.sock");
	ck_assert_int_eq(c.durability, DURABILITY_STRICT);
	ck_assert_int_eq(c.stall_timeout_ms, 5000);
	ck_assert_int_eq(c.retention_snapshots, 1000);
	ck_assert_int_eq(c.retention_days, 30);
	ck_assert_int_eq(c.consumer_idle_days, 14);
	ck_assert_int_eq(c.max_conns_per_uid, 8);
	ck_assert_int_eq(c.max_followers_per_uid, 2);
	ck_assert_int_eq(c.nmounts, 0);
	config_free(&c);
}
END_TEST

START_TEST(test_valid_directives)
{
	struct fst_config	c;

	config_defaults(&c);
	ck_assert_int_eq(parse(&c, "track /home\n"), 0);
	ck_assert_int_eq(parse(&c, "track /srv/data"), 0);
	ck_assert_int_eq(parse(&c, "track /home"), 0);	/* duplicate: once */
	ck_assert_int_eq(c.nmounts, 2);
	ck_assert_str_eq(c.mounts[0], "/home");
	ck_assert_str_eq(c.mounts[1], "/srv/data");

	ck_assert_int_eq(parse(&c, "state-dir /var/lib/other\n"), 0);
	ck_assert_str_eq(c.state_dir, "/var/lib/other");
	ck_assert_int_eq(parse(&c, "socket /run/x/y.sock"), 0);
	ck_assert_str_eq(c.socket_path, "/run/x/y.sock");
	ck_assert_int_eq(parse(&c, "durability async"), 0);
	ck_assert_int_eq(c.durability, DURABILITY_ASYNC);
	ck_assert_int_eq(parse(&c, "durability strict"), 0);
	ck_assert_int_eq(c.durability, DURABILITY_STRICT);
	ck_assert_int_eq(parse(&c, "stall-timeout 10"), 0);
	ck_assert_int_eq(c.stall_timeout_ms, 10);
	ck_assert_int_eq(parse(&c, "stall-timeout 3600000"), 0);
	ck_assert_int_eq(c.stall_timeout_ms, 3600000);
	ck_assert_int_eq(parse(&c, "retention-snapshots 1"), 0);
	ck_assert_int_eq(c.retention_snapshots, 1);
	ck_assert_int_eq(parse(&c, "retention-days 0"), 0);
	ck_assert_int_eq(c.retention_days, 0);
	ck_assert_int_eq(parse(&c, "retention-days 100000"), 0);
	ck_assert_int_eq(c.retention_days, 100000);
	ck_assert_int_eq(parse(&c, "consumer-idle-days 7"), 0);
	ck_assert_int_eq(c.consumer_idle_days, 7);
	ck_assert_int_eq(parse(&c, "merge-delay 0"), 0);
	ck_assert_int_eq(c.merge_delay_ms, 0);
	ck_assert_int_eq(parse(&c, "reconcile-margin 250"), 0);
	ck_assert_int_eq(c.reconcile_margin_ms, 250);
	ck_assert_int_eq(parse(&c, "max-connections-per-uid 1"), 0);
	ck_assert_int_eq(c.max_conns_per_uid, 1);
	ck_assert_int_eq(parse(&c, "max-connections-per-uid 64"), 0);
	ck_assert_int_eq(c.max_conns_per_uid, 64);
	ck_assert_int_eq(parse(&c, "max-followers-per-uid 0"), 0);
	ck_assert_int_eq(c.max_followers_per_uid, 0);
	config_free(&c);
}
END_TEST

START_TEST(test_whitespace_and_comments)
{
	struct fst_config	c;

	config_defaults(&c);
	ck_assert_int_eq(parse(&c, ""), 0);
	ck_assert_int_eq(parse(&c, "\n"), 0);
	ck_assert_int_eq(parse(&c, "   \t  \r\n"), 0);
	ck_assert_int_eq(parse(&c, "# a comment"), 0);
	ck_assert_int_eq(parse(&c, "   # indented comment with track /x"), 0);
	ck_assert_int_eq(parse(&c, "#track /nope"), 0);
	ck_assert_int_eq(c.nmounts, 0);
	ck_assert_int_eq(c.stall_timeout_ms, 5000);

	ck_assert_int_eq(parse(&c, "  durability\t async   # trailing\n"), 0);
	ck_assert_int_eq(c.durability, DURABILITY_ASYNC);
	ck_assert_int_eq(parse(&c, "stall-timeout 250#no space"), 0);
	ck_assert_int_eq(c.stall_timeout_ms, 250);
	ck_assert_int_eq(parse(&c, "\ttrack\t/mnt/a\t\r\n"), 0);
	ck_assert_int_eq(c.nmounts, 1);
	ck_assert_str_eq(c.mounts[0], "/mnt/a");
	config_free(&c);
}
END_TEST

/* Each bad line is refused and changes nothing. */
START_TEST(test_errors)
{
	static const char *bad[] = {
		"frobnicate 1",			/* unknown key */
		"Track /home",			/* keys are case-sensitive */
		"track",			/* missing value */
		"track   ",
		"track # only a comment",
		"durability",
		"track home",			/* relative paths */
		"track ./home",
		"state-dir var/lib/fstrack",
		"socket fstrackd.sock",
		"durability maybe",		/* bad durability */
		"durability STRICT",
		"durability strict2",
		"stall-timeout abc",		/* bad numbers */
		"stall-timeout 10x",
		"stall-timeout -100",
		"stall-timeout 1.5",
		"stall-timeout 0x20",
		"retention-days 99999999999999999999999",
		"stall-timeout 9",		/* out of range */
		"stall-timeout 3600001",
		"retention-snapshots 0",
		"retention-snapshots -1",
		"retention-days -1",
		"retention-days 100001",
		"consumer-idle-days 100001",
		"consumer-idle-days -3",
		"merge-delay 1001",
		"reconcile-margin 3600001",
		"max-connections-per-uid 0",	/* one, at least */
		"max-connections-per-uid 65",	/* the daemon's own limit */
		"max-followers-per-uid -1",
		"max-followers-per-uid 65",
	};
	struct fst_config	c, ref;
	size_t			i;

	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		config_defaults(&c);
		config_defaults(&ref);
		ck_assert_msg(parse(&c, bad[i]) == -1, "accepted '%s'", bad[i]);
		ck_assert_int_eq(c.nmounts, 0);
		ck_assert_str_eq(c.state_dir, ref.state_dir);
		ck_assert_str_eq(c.socket_path, ref.socket_path);
		ck_assert_int_eq(c.durability, ref.durability);
		ck_assert_int_eq(c.stall_timeout_ms, ref.stall_timeout_ms);
		ck_assert_int_eq(c.retention_snapshots, ref.retention_snapshots);
		ck_assert_int_eq(c.retention_days, ref.retention_days);
		ck_assert_int_eq(c.consumer_idle_days, ref.consumer_idle_days);
		ck_assert_int_eq(c.merge_delay_ms, ref.merge_delay_ms);
		ck_assert_int_eq(c.reconcile_margin_ms, ref.reconcile_margin_ms);
		ck_assert_int_eq(c.max_conns_per_uid, ref.max_conns_per_uid);
		ck_assert_int_eq(c.max_followers_per_uid,
		    ref.max_followers_per_uid);
		config_free(&c);
		config_free(&ref);
	}
}
END_TEST

START_TEST(test_durability_parse)
{
	enum fst_durability	d = DURABILITY_STRICT;

	ck_assert_int_eq(config_parse_durability("async", &d), 0);
	ck_assert_int_eq(d, DURABILITY_ASYNC);
	ck_assert_int_eq(config_parse_durability("strict", &d), 0);
	ck_assert_int_eq(d, DURABILITY_STRICT);
	ck_assert_int_eq(config_parse_durability("", &d), -1);
	ck_assert_int_eq(config_parse_durability("asynchronous", &d), -1);
	ck_assert_int_eq(d, DURABILITY_STRICT);
}
END_TEST

static char *tmpdir;

static void
cfg_setup(void)
{
	tmpdir = unit_mkdtemp();
}

static void
cfg_teardown(void)
{
	unit_rmtree(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
}

static char *
tmpfile_with(const char *name, const char *text, size_t len)
{
	char	*p;

	if (asprintf(&p, "%s/%s", tmpdir, name) == -1)
		abort();
	ck_assert_int_eq(unit_write_file(p, text, len), 0);
	return p;
}

START_TEST(test_load_good)
{
	static const char	 text[] =
	    "# fstrackd.conf\n"
	    "\n"
	    "track /home\n"
	    "track /srv/data   # the data\n"
	    "state-dir /tmp/state\n"
	    "durability async\n"
	    "retention-snapshots 5";		/* no final newline */
	struct fst_config	 c;
	char			*p;

	p = tmpfile_with("good.conf", text, sizeof text - 1);
	config_defaults(&c);
	ck_assert_int_eq(config_load(&c, p, 1), 0);
	ck_assert_int_eq(c.nmounts, 2);
	ck_assert_str_eq(c.mounts[1], "/srv/data");
	ck_assert_str_eq(c.state_dir, "/tmp/state");
	ck_assert_int_eq(c.durability, DURABILITY_ASYNC);
	ck_assert_int_eq(c.retention_snapshots, 5);
	config_free(&c);
	free(p);
}
END_TEST

START_TEST(test_load_error_line3)
{
	static const char	 text[] =
	    "track /a\n"
	    "# comment\n"
	    "bogus-directive 1\n"
	    "track /b\n";
	struct fst_config	 c;
	char			*p;

	p = tmpfile_with("bad.conf", text, sizeof text - 1);
	config_defaults(&c);
	ck_assert_int_eq(config_load(&c, p, 1), -1);
	/* it stopped at the error */
	ck_assert_int_eq(c.nmounts, 1);
	ck_assert_str_eq(c.mounts[0], "/a");
	config_free(&c);
	config_defaults(&c);
	ck_assert_int_eq(config_load(&c, p, 0), -1);	/* default file too */
	config_free(&c);
	free(p);
}
END_TEST

START_TEST(test_load_nul_byte)
{
	static const char	 text[] = "track /a\ntrack /b\0/c\n";
	struct fst_config	 c;
	char			*p;

	p = tmpfile_with("nul.conf", text, sizeof text - 1);
	config_defaults(&c);
	ck_assert_int_eq(config_load(&c, p, 1), -1);
	config_free(&c);
	free(p);
}
END_TEST

START_TEST(test_load_missing)
{
	struct fst_config	 c;
	char			*p;

	if (asprintf(&p, "%s/does-not-exist.conf", tmpdir) == -1)
		abort();
	config_defaults(&c);
	ck_assert_int_eq(config_load(&c, p, 0), 0);	/* default: fine */
	ck_assert_int_eq(config_load(&c, p, 1), -1);	/* -c FILE: error */
	/* a directory is not a readable config even as the default */
	ck_assert_int_eq(config_load(&c, tmpdir, 0), -1);
	config_free(&c);
	free(p);
}
END_TEST

Suite *
config_suite(void)
{
	Suite	*s = suite_create("config");
	TCase	*tc;

	tc = tcase_create("lines");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_valid_directives);
	tcase_add_test(tc, test_whitespace_and_comments);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_durability_parse);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_unchecked_fixture(tc, cfg_setup, cfg_teardown);
	tcase_add_test(tc, test_load_good);
	tcase_add_test(tc, test_load_error_line3);
	tcase_add_test(tc, test_load_nul_byte);
	tcase_add_test(tc, test_load_missing);
	suite_add_tcase(s, tc);
	return s;
}
