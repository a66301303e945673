/*
 * test_csv.c - the core's CSV reader: fields kept as RFC 4180 has them (empty ones,
 * quoted commas, doubled quotes, a quoted line break), columns found by header name, and
 * the errors for a missing column and a record of the wrong length, naming file and line;
 * and a field written by cnb_csv_field read back.
 */
#include "csv.h"
#include "cnnbench/plugin.h"
#include "testutil.h"

/* Empty fields are fields: between commas, at the start and at the end. */
static void test_split_empty_fields(void)
{
    char line[] = ",a,,b,\r\n";
    char *f[8];
    CU_ASSERT_EQUAL_FATAL(cnb_csv_split(line, f, 8), 5);
    const char *want[] = {"", "a", "", "b", ""};
    for (int i = 0; i < 5; i++)
        CU_ASSERT_STRING_EQUAL(f[i], want[i]);
    char one[] = "\n";
    CU_ASSERT_EQUAL(cnb_csv_split(one, f, 8), 1);
    CU_ASSERT_STRING_EQUAL(f[0], "");
}

/* A quoted field keeps its commas; "" inside it is one quote; an empty quoted field is "". */
static void test_split_quotes(void)
{
    char line[] = "\"pool=max, act=relu\",\"say \"\"hi\"\"\",\"\",7\n";
    char *f[8];
    CU_ASSERT_EQUAL_FATAL(cnb_csv_split(line, f, 8), 4);
    CU_ASSERT_STRING_EQUAL(f[0], "pool=max, act=relu");
    CU_ASSERT_STRING_EQUAL(f[1], "say \"hi\"");
    CU_ASSERT_STRING_EQUAL(f[2], "");
    CU_ASSERT_STRING_EQUAL(f[3], "7");
}

static const char *write_csv(const char *name, const char *text)
{
    static char path[700];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    test_write_file(path, text);
    return path;
}

/* Columns by name in any order; a quoted line break stays in its field and the next
 * record's line number counts it. */
static void test_reader_by_name(void)
{
    const char *path = write_csv("rows.csv", "model,gflops,note,backend\n"
                                             "lenet5,,plain,naive\n"
                                             "alexnet,1.5,\"two\nlines, quoted\",onednn\n"
                                             "lenet5,2,x\n");
    cnb_csv c;
    const char *const names[] = {"backend", "model", "gflops", NULL};
    int col[3];
    CU_ASSERT_EQUAL_FATAL(cnb_csv_open(&c, path), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_columns(&c, names, col), 0);
    CU_ASSERT_EQUAL(cnb_csv_find(&c, "note"), 2);
    CU_ASSERT_EQUAL(cnb_csv_find(&c, "threads"), -1);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_next(&c), 1);
    CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[0]), "naive");
    CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[1]), "lenet5");
    CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[2]), ""); /* empty, not the next field */
    CU_ASSERT_EQUAL_FATAL(cnb_csv_next(&c), 1);
    CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, 2), "two\nlines, quoted");
    CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, col[0]), "onednn");
    CU_ASSERT_EQUAL(c.line, 3);
    /* the short record on line 5 (the quoted break took line 4) */
    CU_ASSERT_EQUAL(cnb_csv_next(&c), CNB_EINVAL);
    CHECK_MSG(c.err, "rows.csv:5: 3 fields, the header has 4 columns");
    cnb_csv_close(&c);
}

/* A missing column is named, with the file, its header line and the columns it has. */
static void test_reader_missing_column(void)
{
    const char *path = write_csv("peer.csv", "model,backend,pass\nlenet5,torch,train\n");
    cnb_csv c;
    const char *const names[] = {"model", "median_ms", "pass", NULL};
    int col[3];
    CU_ASSERT_EQUAL_FATAL(cnb_csv_open(&c, path), 0);
    CU_ASSERT_EQUAL(cnb_csv_columns(&c, names, col), CNB_EINVAL);
    CHECK_MSG(c.err, "peer.csv:1: no column 'median_ms' in the header (its columns: model "
                     "backend pass)");
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(cnb_csv_open(&c, write_csv("empty.csv", "")), CNB_EINVAL);
    CHECK_MSG(c.err, "empty.csv: empty; expected a header line");
    cnb_csv_close(&c);
    CU_ASSERT_EQUAL(cnb_csv_open(&c, "/nonexistent/x.csv"), CNB_ENOTFOUND);
    CHECK_MSG(c.err, "/nonexistent/x.csv: cannot open");
    cnb_csv_close(&c);
}

/* A field written by cnb_csv_field reads back as it was: commas and quotes kept, a line
 * break made a space, the record on one line. */
static void test_field_round_trip(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/written.csv", test_tmpdir());
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("how,n\n", f);
    cnb_csv_field(f, "tuned, \"glibc\"\nkeeping");
    fputs(",1\n", f);
    cnb_csv_field(f, "");
    fputs(",2\n", f);
    fclose(f);
    cnb_csv c;
    CU_ASSERT_EQUAL_FATAL(cnb_csv_open(&c, path), 0);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_next(&c), 1);
    CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, 0), "tuned, \"glibc\" keeping");
    CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, 1), "1");
    CU_ASSERT_EQUAL(c.line, 2);
    CU_ASSERT_EQUAL_FATAL(cnb_csv_next(&c), 1);
    CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, 0), "");
    CU_ASSERT_STRING_EQUAL(cnb_csv_get(&c, 1), "2");
    CU_ASSERT_EQUAL(cnb_csv_next(&c), 0);
    cnb_csv_close(&c);
}

void suite_csv(void)
{
    static const test_case cases[] = {
        {"split: empty fields are kept", test_split_empty_fields},
        {"split: quoted commas, doubled quotes, empty quotes", test_split_quotes},
        {"reader: columns by name, a quoted line break, a short record", test_reader_by_name},
        {"reader: a missing column named with file and line", test_reader_missing_column},
        {"writer: a quoted field reads back as written", test_field_round_trip},
        {NULL, NULL},
    };
    test_add_suite("csv", cases);
}
