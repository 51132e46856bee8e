#!/bin/sh
# Runs every unit test binary given, prints each one's output, and ends with the plain
# closing line "unit: N passed, N failed". Exits 1 if any failed.
passed=0; failed=0
for t in "$@"; do
	if timeout 120 "$t"; then passed=$((passed + 1)); else
		echo "FAILED: $t"; failed=$((failed + 1)); fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
