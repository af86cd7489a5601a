#!/usr/bin/python3
"""Build step: turns a file into a C array (the dashboard page is served from memory)."""
import sys

src, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
with open(out, "w") as f:
    f.write("/* Generated from %s by control/embed.py: do not edit. */\n" % src.split("/")[-1])
    f.write("const char %s[] = {\n" % name)
    for i in range(0, len(data), 16):
        f.write("\t" + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",\n")
    f.write("\t0x00\n};\n")
    f.write("const unsigned long %s_len = %d;\n" % (name, len(data)))
