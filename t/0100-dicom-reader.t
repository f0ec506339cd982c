#!/bin/sh
# 0100-dicom-reader: lib/dicom/dicom.c against hand-made datasets, pydicom's test
# and character-set files, the shared corpus, and dcmdump's reading of every
# file in them (t/unit/dicom_test.c does the checking; this script asks
# dcmdump first, two files at a time, and hands its answers over).
set -u
: "${GW_BUILD:?GW_BUILD must name the build directory}"
: "${GW_ROOT:?GW_ROOT must name the project root}"

PYDICOM_DATA=${PYDICOM_DATA:-/usr/lib/python3/dist-packages/pydicom/data}
CORPUS=${SHARED:-$GW_ROOT/../shared}/corpus
test_bin=$GW_BUILD/t/dicom_test

if [ ! -x "$test_bin" ]; then
	echo "1..0 # SKIP $test_bin not built (make units)"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/0100-dicom.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

# dcmdump's view of a batch of files, one line each: path, ok/fail, then
# top-level Rows, Columns and SOPInstanceUID as dcmdump prints them
# ("(absent)" when absent).  One dcmdump per batch (+F marks each file);
# if dcmdump crashes on a batch, the batch is redone file by file and a
# crash counts as "fail".
expect_batch='
out=$(mktemp "$T/batch.XXXXXX") || exit 1
printf "%s\n" "$@" >"$out.list"
P="+F +s +p +L +P 0028,0010 +P 0028,0011 +P 0008,0018"
dcmdump $P "$@" >"$out.o" 2>"$out.e"
if [ $? -ge 128 ]; then
	: >"$out.o"; : >"$out.e"
	for f do
		dcmdump $P "$f" >>"$out.o" 2>>"$out.e"
		[ $? -ge 128 ] && printf "E: crashed: reading file: %s\n" "$f" >>"$out.e"
	done
fi
awk -v OFS="	" "
FILENAME == ARGV[1] { order[++n] = \$0; next }
FILENAME == ARGV[2] {
	i = index(\$0, \"reading file: \")
	if (i > 0) failed[substr(\$0, i + 14)] = 1
	next
}
/^# dcmdump \\([0-9]+\\/[0-9]+\\): / { cur = substr(\$0, index(\$0, \"): \") + 3); seen[cur] = 1; next }
{
	t = substr(\$0, 1, 11)
	if (t != \"(0028,0010)\" && t != \"(0028,0011)\" && t != \"(0008,0018)\") next
	if ((cur, t) in val) next
	v = substr(\$0, 16)
	sub(/ +#[^#]*\$/, \"\", v)
	if (v == \"(no value available)\") v = \"\"
	if (substr(v, 1, 1) == \"[\" && substr(v, length(v)) == \"]\")
		v = substr(v, 2, length(v) - 2)
	val[cur, t] = v
}
END {
	for (i = 1; i <= n; i++) {
		f = order[i]
		line = f OFS (seen[f] && !(f in failed) ? \"ok\" : \"fail\")
		split(\"(0028,0010) (0028,0011) (0008,0018)\", tags, \" \")
		for (k = 1; k <= 3; k++)
			line = line OFS ((f, tags[k]) in val ? val[f, tags[k]] : \"(absent)\")
		print line
	}
}" "$out.list" "$out.e" "$out.o" >"$out.tsv"
rm -f "$out" "$out.list" "$out.o" "$out.e"
'

expect=
if ! command -v dcmdump >/dev/null 2>&1; then
	echo "# dcmdump not found: the corpus comparison is skipped" >&2
elif [ ! -d "$CORPUS/files" ]; then
	echo "# corpus not found at $CORPUS: comparison skipped" >&2
else
	{
		find "$CORPUS/files" -type f
		find "$PYDICOM_DATA/test_files" "$PYDICOM_DATA/charset_files" \
		    -type f 2>/dev/null
	} | sort | tr '\n' '\0' |
	    T=$tmp xargs -0 -n 50 -P 2 sh -c "$expect_batch" sh
	cat "$tmp"/batch.*.tsv >"$tmp/expect.tsv" 2>/dev/null
	expect=$tmp/expect.tsv
fi

"$test_bin" "$PYDICOM_DATA" "$CORPUS" $expect
