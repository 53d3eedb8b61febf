/*
 * check_proto.c -- the control protocol helpers shared by daemon and client:
 * the growable buffer, escaping, request splitting and parsing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "unit.h"

START_TEST(test_sbuf_basic)
{
	struct sbuf	b;
	size_t		i, cap;
	char		big[10000];

	sbuf_init(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	sbuf_reset(&b);			/* fine on an empty buffer */
	ck_assert_uint_eq(b.len, 0);

	sbuf_addstr(&b, "abc");
	sbuf_add(&b, "de\0f", 4);	/* binary-safe */
	ck_assert_uint_eq(b.len, 7);
	ck_assert_mem_eq(b.data, "abcde\0f", 7);
	ck_assert_int_eq(b.data[7], '\0');

	/* grow far beyond the first allocation */
	for (i = 0; i < sizeof big; i++)
		big[i] = 'A' + i % 26;
	sbuf_add(&b, big, sizeof big);
	ck_assert_uint_eq(b.len, 7 + sizeof big);
	ck_assert_mem_eq(b.data + 7, big, sizeof big);
	ck_assert_int_eq(b.data[b.len], '\0');
	ck_assert_uint_ge(b.cap, b.len + 1);

	/* reset keeps the memory and empties the string */
	cap = b.cap;
	sbuf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, cap);
	ck_assert_str_eq(b.data, "");
	sbuf_addstr(&b, "x");
	ck_assert_str_eq(b.data, "x");
	sbuf_free(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(test_sbuf_printf)
{
	struct sbuf	b;
	char		want[2000];
	int		i;

	sbuf_init(&b);
	sbuf_printf(&b, "%d-%s", 42, "x");
	ck_assert_str_eq(b.data, "42-x");
	sbuf_printf(&b, "%s", "");
	ck_assert_str_eq(b.data, "42-x");
	/* a long formatted string crossing the growth boundary */
	memset(want, 'q', sizeof want - 1);
	want[sizeof want - 1] = '\0';
	sbuf_printf(&b, "%s|%lld", want, -9000000000LL);
	ck_assert_uint_eq(b.len, 4 + sizeof want - 1 + 1 + 11);
	ck_assert_int_eq(strncmp(b.data + 4, want, sizeof want - 1), 0);
	ck_assert_str_eq(b.data + 4 + sizeof want - 1, "|-9000000000");
	for (i = 0; i < 100; i++)
		sbuf_printf(&b, "%c", 'a');
	ck_assert_uint_eq(strlen(b.data), b.len);
	sbuf_free(&b);
}
END_TEST

/*
 * The escaped form of s, in a buffer of the caller's (so that a failed
 * assertion leaks nothing under CK_FORK=no valgrind).
 */
static char *
escaped_to(char *out, size_t outlen, const char *s)
{
	struct sbuf	b;

	sbuf_init(&b);
	sbuf_add_escaped(&b, s);
	snprintf(out, outlen, "%s", b.data != NULL ? b.data : "");
	sbuf_free(&b);
	return out;
}
#define escaped(s)	escaped_to(ebuf, sizeof ebuf, (s))

START_TEST(test_escape)
{
	char	 ebuf[256], *e;

	e = escaped("a\nb\tc\\d");
	ck_assert_str_eq(e, "a\\nb\\tc\\\\d");
	e = escaped("");
	ck_assert_str_eq(e, "");
	/* other bytes pass unchanged */
	e = escaped("\r\x01 \x7f\xc3\xa9\xff/'\"");
	ck_assert_str_eq(e, "\r\x01 \x7f\xc3\xa9\xff/'\"");
	e = escaped("\\n");		/* a literal backslash-n */
	ck_assert_str_eq(e, "\\\\n");
}
END_TEST

START_TEST(test_escape_round_trip)
{
	static const char *cases[] = {
		"plain", "", "a\nb", "\t", "\\", "\\\\", "\\n", "\\t", "x\\",
		"\n\n\t\t\\\\", "tab\tnew\nback\\slash", "\r\x01\x1f\x7f\xff",
		"ends with backslash\\", "\\q unknown", "caf\xc3\xa9 \xe2\x82\xac",
	};
	size_t	i;
	char	ebuf[256], *e;

	for (i = 0; i < sizeof cases / sizeof *cases; i++) {
		e = escaped(cases[i]);
		/* one line, one field */
		ck_assert_ptr_null(strchr(e, '\n'));
		ck_assert_ptr_null(strchr(e, '\t'));
		proto_unescape(e);
		ck_assert_msg(strcmp(e, cases[i]) == 0,
		    "round trip of case %zu changed it", i);
	}
}
END_TEST

/* Bytes with NULs: one line without NUL, and back to the same bytes. */
START_TEST(test_escape_bytes)
{
	static const char	 raw[] = "a\0b\n\0\\0\t\0";
	struct sbuf		 b;
	char			 s[64];
	size_t			 n;

	sbuf_init(&b);
	sbuf_add_escaped_bytes(&b, raw, sizeof raw - 1);
	ck_assert_str_eq(b.data, "a\\0b\\n\\0\\\\0\\t\\0");
	ck_assert_uint_eq(strlen(b.data), b.len);
	n = proto_unescape_bytes(b.data);
	ck_assert_uint_eq(n, sizeof raw - 1);
	ck_assert(memcmp(b.data, raw, n) == 0);
	/* nothing to escape; and \0 is kept by proto_unescape */
	sbuf_reset(&b);
	sbuf_add_escaped_bytes(&b, "plain", 5);
	ck_assert_str_eq(b.data, "plain");
	sbuf_free(&b);
	strcpy(s, "x\\0y");
	proto_unescape(s);
	ck_assert_str_eq(s, "x\\0y");
}
END_TEST

START_TEST(test_unescape)
{
	char	s[64];

	strcpy(s, "a\\nb\\tc\\\\d");
	proto_unescape(s);
	ck_assert_str_eq(s, "a\nb\tc\\d");
	/* unknown escapes and a trailing backslash are kept literally */
	strcpy(s, "x\\qy\\");
	proto_unescape(s);
	ck_assert_str_eq(s, "x\\qy\\");
	strcpy(s, "");
	proto_unescape(s);
	ck_assert_str_eq(s, "");
	strcpy(s, "\\\\n");
	proto_unescape(s);
	ck_assert_str_eq(s, "\\n");
}
END_TEST

START_TEST(test_split)
{
	char	 line[PROTO_MAX_LINE];
	char	*argv[PROTO_MAX_ARGS];
	int	 i;

	strcpy(line, "barrier 12");
	ck_assert_int_eq(proto_split(line, argv, PROTO_MAX_ARGS), 2);
	ck_assert_str_eq(argv[0], "barrier");
	ck_assert_str_eq(argv[1], "12");

	strcpy(line, "status");
	ck_assert_int_eq(proto_split(line, argv, PROTO_MAX_ARGS), 1);
	ck_assert_str_eq(argv[0], "status");

	strcpy(line, "");
	ck_assert_int_eq(proto_split(line, argv, PROTO_MAX_ARGS), 0);

	/* exactly max words, and one more */
	strcpy(line, "a b c");
	ck_assert_int_eq(proto_split(line, argv, 3), 3);
	ck_assert_str_eq(argv[2], "c");
	strcpy(line, "a b c d");
	ck_assert_int_eq(proto_split(line, argv, 3), -1);
	line[0] = '\0';
	for (i = 0; i < PROTO_MAX_ARGS + 1; i++)
		strcat(line, i ? " w" : "w");
	ck_assert_int_eq(proto_split(line, argv, PROTO_MAX_ARGS), -1);

	/* empty words */
	strcpy(line, "a  b");
	ck_assert_int_eq(proto_split(line, argv, PROTO_MAX_ARGS), -1);
	strcpy(line, "a ");
	ck_assert_int_eq(proto_split(line, argv, PROTO_MAX_ARGS), -1);
	strcpy(line, " ");
	ck_assert_int_eq(proto_split(line, argv, PROTO_MAX_ARGS), -1);
}
END_TEST

START_TEST(test_split_leading_space)
{
	char	 line[64];
	char	*argv[PROTO_MAX_ARGS];

	/* " a" starts with an empty word: as malformed as "a  b" */
	strcpy(line, " status");
	ck_assert_int_eq(proto_split(line, argv, PROTO_MAX_ARGS), -1);
}
END_TEST

START_TEST(test_valid_name)
{
	char	n[80];

	ck_assert(proto_valid_name("a"));
	ck_assert(proto_valid_name("backup-1.daily_x@host:22+y"));
	memset(n, 'x', 64);
	n[64] = '\0';
	ck_assert(proto_valid_name(n));
	n[64] = 'x';
	n[65] = '\0';
	ck_assert(!proto_valid_name(n));
	ck_assert(!proto_valid_name(""));
	ck_assert(!proto_valid_name("a b"));
	ck_assert(!proto_valid_name("a/b"));
	ck_assert(!proto_valid_name("a\tb"));
	ck_assert(!proto_valid_name("a\n"));
	ck_assert(!proto_valid_name("a\\b"));
	ck_assert(!proto_valid_name("caf\xc3\xa9"));
	ck_assert(!proto_valid_name("x;rm"));
	ck_assert(!proto_valid_name("*"));
}
END_TEST

START_TEST(test_parse_u64)
{
	unsigned long long	v;

	ck_assert_int_eq(proto_parse_u64("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(proto_parse_u64("1764112200", &v), 0);
	ck_assert_uint_eq(v, 1764112200ULL);
	ck_assert_int_eq(proto_parse_u64("007", &v), 0);
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(proto_parse_u64("18446744073709551615", &v), 0);
	ck_assert(v == 18446744073709551615ULL);

	v = 5;
	ck_assert_int_eq(proto_parse_u64("18446744073709551616", &v), -1);
	ck_assert_int_eq(proto_parse_u64("99999999999999999999999", &v), -1);
	ck_assert_int_eq(proto_parse_u64("-1", &v), -1);
	ck_assert_int_eq(proto_parse_u64("+1", &v), -1);
	ck_assert_int_eq(proto_parse_u64(" 1", &v), -1);
	ck_assert_int_eq(proto_parse_u64("1 ", &v), -1);
	ck_assert_int_eq(proto_parse_u64("1x", &v), -1);
	ck_assert_int_eq(proto_parse_u64("0x10", &v), -1);
	ck_assert_int_eq(proto_parse_u64("1.5", &v), -1);
	ck_assert_int_eq(proto_parse_u64("", &v), -1);
	ck_assert_int_eq(proto_parse_u64("x", &v), -1);
	ck_assert_uint_eq(v, 5);	/* untouched on error */
}
END_TEST

START_TEST(test_position_round_trip)
{
	struct proto_position	p, q;
	char			buf[PROTO_POSITION_MAX];
	const char		*c;

	memset(&p, 0, sizeof p);
	strcpy(p.journal, "86a94924242a2b98");
	p.snapshot = 1795654486335LL;
	p.seq = 4294967297LL;
	ck_assert_int_eq(proto_format_position(buf, sizeof buf, &p), 0);
	ck_assert_str_eq(buf, "fst1:86a94924242a2b98:1795654486335:4294967297");
	ck_assert_int_eq(proto_parse_position(buf, &q), 0);
	ck_assert_str_eq(q.journal, p.journal);
	ck_assert(q.snapshot == p.snapshot && q.seq == p.seq);
	/* only the characters the clients were promised, never digits only */
	for (c = buf; *c != '\0'; c++)
		ck_assert(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789:._-", *c) != NULL);
	ck_assert(strspn(buf, "0123456789") != strlen(buf));

	/* the largest values fit the buffer */
	p.snapshot = p.seq = 1LL << 62;
	ck_assert_int_eq(proto_format_position(buf, sizeof buf, &p), 0);
	ck_assert_int_eq(proto_parse_position(buf, &q), 0);
	ck_assert(q.snapshot == 1LL << 62 && q.seq == 1LL << 62);
	ck_assert_int_eq(proto_format_position(buf, 20, &p), -1);

	/* what cannot be a token is not written */
	p.seq = 0;
	ck_assert_int_eq(proto_format_position(buf, sizeof buf, &p), -1);
	p.seq = 1;
	p.snapshot = (1LL << 62) + 1;
	ck_assert_int_eq(proto_format_position(buf, sizeof buf, &p), -1);
	p.snapshot = 1;
	strcpy(p.journal, "86A94924242a2b98");
	ck_assert_int_eq(proto_format_position(buf, sizeof buf, &p), -1);
	strcpy(p.journal, "86a94924242a2b9");
	ck_assert_int_eq(proto_format_position(buf, sizeof buf, &p), -1);
}
END_TEST

START_TEST(test_position_parse_strict)
{
	static const char *bad[] = {
		"", "fst1:", "fst1:86a94924242a2b98", "fst1:86a94924242a2b98:",
		"fst1:86a94924242a2b98:1", "fst1:86a94924242a2b98:1:",
		"fst2:86a94924242a2b98:1:2", "FST1:86a94924242a2b98:1:2",
		"fst1:86a94924242a2b9:1:2", "fst1:86a94924242a2b988:1:2",
		"fst1:86A94924242a2b98:1:2", "fst1:86a94924242a2b9g:1:2",
		"fst1:86a94924242a2b98:0:2", "fst1:86a94924242a2b98:1:0",
		"fst1:86a94924242a2b98:01:2", "fst1:86a94924242a2b98:1:02",
		"fst1:86a94924242a2b98:-1:2", "fst1:86a94924242a2b98:+1:2",
		"fst1:86a94924242a2b98:1:2:", "fst1:86a94924242a2b98:1:2 ",
		" fst1:86a94924242a2b98:1:2", "fst1:86a94924242a2b98:1::2",
		"fst1:86a94924242a2b98:1:2x", "fst1:86a94924242a2b98:1:2\n",
		"fst1:86a94924242a2b98:4611686018427387905:2",
		"fst1:86a94924242a2b98:1:99999999999999999999",
		"fst1:86a94924242a2b98:1:18446744073709551617",
		"12345",
	};
	struct proto_position	q;
	size_t			i;

	memset(&q, 0x5a, sizeof q);
	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		ck_assert_msg(proto_parse_position(bad[i], &q) == -1,
		    "accepted '%s'", bad[i]);
		ck_assert_int_eq(q.snapshot, 0x5a5a5a5a5a5a5a5aLL);
	}
	ck_assert_int_eq(proto_parse_position(
	    "fst1:0000000000000000:4611686018427387904:1", &q), 0);
}
END_TEST

START_TEST(test_parse_since)
{
	struct proto_since	s;

	ck_assert_int_eq(proto_parse_since("1795654486335", &s), 0);
	ck_assert_int_eq(s.is_position, 0);
	ck_assert(s.snapshot == 1795654486335LL);
	ck_assert_int_eq(proto_parse_since("0", &s), 0);	/* exit 3 later */
	ck_assert_int_eq(s.is_position, 0);
	ck_assert_int_eq(proto_parse_since(
	    "fst1:86a94924242a2b98:1795654486335:77", &s), 0);
	ck_assert_int_eq(s.is_position, 1);
	ck_assert(s.snapshot == 1795654486335LL && s.pos.seq == 77);
	ck_assert_str_eq(s.pos.journal, "86a94924242a2b98");
	ck_assert_int_eq(proto_parse_since("4611686018427387905", &s), -1);
	ck_assert_int_eq(proto_parse_since("x", &s), -1);
	ck_assert_int_eq(proto_parse_since("", &s), -1);
	ck_assert_int_eq(proto_parse_since("7 ", &s), -1);
	ck_assert_int_eq(proto_parse_since("fst1:7", &s), -1);
}
END_TEST

static char *
json_to(char *out, size_t outlen, const char *s)
{
	struct sbuf	b;

	sbuf_init(&b);
	sbuf_add_json_string(&b, s);
	snprintf(out, outlen, "%s", b.data);
	sbuf_free(&b);
	return out;
}
#define json(s)		json_to(ebuf, sizeof ebuf, (s))

START_TEST(test_json_string)
{
	char	 ebuf[256], *j;

	j = json("");
	ck_assert_str_eq(j, "\"\"");
	j = json("plain/path.txt");
	ck_assert_str_eq(j, "\"plain/path.txt\"");
	j = json("say \"hi\" \\o/");
	ck_assert_str_eq(j, "\"say \\\"hi\\\" \\\\o/\"");
	j = json("a\nb\tc\rd\x01\x1f\x7f");
	ck_assert_str_eq(j, "\"a\\u000ab\\u0009c\\u000dd\\u0001\\u001f\\u007f\"");
	/* valid UTF-8 passes through */
	j = json("caf\xc3\xa9 \xe2\x82\xac");
	ck_assert_str_eq(j, "\"caf\xc3\xa9 \xe2\x82\xac\"");
}
END_TEST

/*
 * sbuf_add_json_string promises (comment in proto.c) that bytes which are
 * not valid UTF-8 come out as \u00XX so the output stays valid JSON.
 */
START_TEST(test_json_string_invalid_utf8)
{
	char	 ebuf[256], *j;

	j = json("a\xff" "b");
	ck_assert_str_eq(j, "\"a\\u00ffb\"");
	j = json("\xc3(");		/* lead byte without continuation */
	ck_assert_str_eq(j, "\"\\u00c3(\"");
}
END_TEST

Suite *
proto_suite(void)
{
	Suite	*s = suite_create("proto");
	TCase	*tc;

	tc = tcase_create("sbuf");
	tcase_add_test(tc, test_sbuf_basic);
	tcase_add_test(tc, test_sbuf_printf);
	suite_add_tcase(s, tc);

	tc = tcase_create("escape");
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_escape_round_trip);
	tcase_add_test(tc, test_unescape);
	tcase_add_test(tc, test_escape_bytes);
	tcase_add_test(tc, test_json_string);
	tcase_add_test(tc, test_json_string_invalid_utf8);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_split);
	tcase_add_test(tc, test_split_leading_space);
	tcase_add_test(tc, test_valid_name);
	tcase_add_test(tc, test_parse_u64);
	tcase_add_test(tc, test_position_round_trip);
	tcase_add_test(tc, test_position_parse_strict);
	tcase_add_test(tc, test_parse_since);
	suite_add_tcase(s, tc);
	return s;
}
