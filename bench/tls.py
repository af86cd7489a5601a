"""TLS benchmarks (bench/README.md): full and resumed handshakes per second with the server
on one core, measured by `openssl s_time` on the other CPU. Certificates are made here
with the openssl CLI (an ECDSA P-256 leaf under a test CA).

Usage: bench/tls.sh [--runs 3] [--seconds 5]"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import DUROD, free_port, wait_port  # noqa: E402


def make_cert(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", "key.pem", "-out", "cert.pem", "-days", "30",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   cwd=d, check=True, capture_output=True)


def s_time(port, seconds, reuse):
    out = subprocess.run(["taskset", "-c", "1", "openssl", "s_time", "-connect", "127.0.0.1:%d" % port,
                          "-reuse" if reuse else "-new", "-time", str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"(\d+) connections in ([\d.]+)s; ([\d.]+) connections/user sec", out.stdout)
    m2 = re.search(r"(\d+) connections in (\d+) real seconds", out.stdout)
    if not m2:
        raise RuntimeError(out.stdout + out.stderr)
    return int(m2.group(1)) / int(m2.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="duro-tlsbench-")
    try:
        make_cert(tmp)
        port = free_port()
        p = subprocess.Popen(["taskset", "-c", "0", DUROD, "--cores", "1", "--listen", "127.0.0.1:%d" % port,
                              "--data-dir", os.path.join(tmp, "d"), "--tls-cert", os.path.join(tmp, "cert.pem"),
                              "--tls-key", os.path.join(tmp, "key.pem")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(port)
        full, resumed = [], []
        try:
            for i in range(a.runs):
                full.append(s_time(port, a.seconds, False))
                resumed.append(s_time(port, a.seconds, True))
                print("run %d: full handshakes %.0f/s, resumed %.0f/s" % (i + 1, full[-1], resumed[-1]), flush=True)
        finally:
            p.terminate()
            p.wait(timeout=30)
        print("one server core, ECDSA P-256, TLS 1.2: median %.0f full handshakes/s, %.0f resumed/s "
              "(resumed/full %.1fx)" % (statistics.median(full), statistics.median(resumed),
                                       statistics.median(resumed) / statistics.median(full)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
