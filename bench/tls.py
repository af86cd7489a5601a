"""TLS benchmarks (bench/README.md): the https counter and the wss broadcast as ratios to
plaintext in the same runs (durobench --tls), then full and resumed handshakes per second
with the server on one core, measured by `openssl s_time` on the other CPU. Certificates are made here
with the openssl CLI (an ECDSA P-256 leaf under a test CA).

Usage: bench/tls.sh [--runs 3] [--seconds 5] [--only handshakes|ratios]"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import BENCH, DUROD, free_port, wait_port  # noqa: E402


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


def start(tmp, tls):
    port = free_port()
    args = ["taskset", "-c", "0", DUROD, "--cores", "1", "--listen", "127.0.0.1:%d" % port,
            "--data-dir", os.path.join(tmp, "d%d" % port)]
    if tls:
        args += ["--tls-cert", os.path.join(tmp, "cert.pem"), "--tls-key", os.path.join(tmp, "key.pem")]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_port(port)
    return p, port


def durobench(port, tls, extra, seconds):
    out = subprocess.run(["taskset", "-c", "1", BENCH, "--port", str(port), "--duration", str(seconds),
                          "--warmup", "1"] + (["--tls"] if tls else []) + extra,
                         capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)


def ratios(a, tmp):
    """The https counter and the wss broadcast against plaintext, in the same runs."""
    scenarios = [("counter", ["--conns", "64", "--prefix", "/memcounter/"], "rps"),
                 ("broadcast", ["--ws", "/room/b", "--conns", "1000", "--pipeline", "8"], "deliveries_per_s")]
    for name, extra, key in scenarios:
        rs = []
        for i in range(a.runs):
            vals = {}
            for tls in (False, True):
                p, port = start(tmp, tls)
                try:
                    vals[tls] = durobench(port, tls, extra, a.seconds)
                finally:
                    p.terminate()
                    p.wait(timeout=30)
            rs.append((vals[False][key], vals[True][key], vals[True][key] / vals[False][key]))
            print("%s run %d: plain %.0f, tls %.0f (%s), ratio %.2f (tls p99 %.0f us)"
                  % (name, i + 1, rs[-1][0], rs[-1][1], key, rs[-1][2], vals[True]["p99_us"]), flush=True)
        print("%s: median plain %.0f, tls %.0f, tls/plain %.2f (same-run ratios)"
              % (name, statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs),
                 statistics.median(r[2] for r in rs)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--only", choices=["handshakes", "ratios"])
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="duro-tlsbench-")
    try:
        make_cert(tmp)
        if a.only in (None, "ratios"):
            ratios(a, tmp)
        if a.only == "ratios":
            return
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
