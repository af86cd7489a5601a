"""Disk full: data_dir on a small tmpfs. Writes get 507 with a clear log line, reads keep
working, nothing is corrupted, and writes succeed again once space is freed."""
import os
import subprocess

import pytest
import requests

import conftest


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("cannot mount a tmpfs in CI: %s" % r.stderr)
        pytest.skip("needs root to mount a small tmpfs: %s" % r.stderr.strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def probes_per_core(d, cores=2):
    """A counter name owned by each core (each core checks the free space on its own)."""
    found = {}
    for i in range(64):
        name = "probe%d" % i
        found.setdefault(d.object_info("COUNTER", name)["core"], name)
        if len(found) == cores:
            return list(found.values())
    raise AssertionError("no probe name for every core: %s" % found)


def all_cores_answer(d, probes, status):
    """True once a write to each core's probe is answered `status`."""
    return all(requests.post(d.url + "/counter/" + p).status_code == status for p in probes)


def test_disk_full_507_reads_work_then_recovers(small_fs, tmp_path):
    config = {"storage": {"min_free_bytes": 8 << 20, "write_buffer_bytes": 1 << 20,
                          "log_rotate_bytes": 1 << 20, "block_cache_bytes": 1 << 20}}
    d = conftest.start_on(tmp_path, "run", small_fs / "data", config=config)
    try:
        u = d.url + "/kv/full"
        for i in range(5):
            assert requests.put(u + "/k/early%d" % i, data=b"E" * 1000).status_code == 204
        assert requests.post(d.url + "/counter/c").text == "1"
        # Leave about 12 MiB free, then write 100 KB values until refused.
        filler = small_fs / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free_bytes(small_fs) - (12 << 20)))
        codes = []
        for i in range(300):
            codes.append(requests.put(u + "/k/big%03d" % i, data=os.urandom(100000)).status_code)
            if codes.count(507) >= 3:
                break
        assert 507 in codes and set(codes) <= {204, 507}, codes
        assert "refusing writes (507)" in d.logtext()
        # RocksDB may free some space (obsolete files) meanwhile: hold the free space at
        # 4 MiB, under the 8 MiB reserve, and every core must refuse writes.
        with open(small_fs / "filler2", "wb") as f:
            f.write(b"\0" * max(0, free_bytes(small_fs) - (4 << 20)))
        # Each core looks at the free space at most every 50 ms, when a write comes.
        probes = probes_per_core(d)
        conftest.wait_until(lambda: all_cores_answer(d, probes, 507), 5,
                            what="every core to refuse writes")
        for name in ("c", "c2", "c3", "c4"):
            assert requests.post(d.url + "/counter/" + name).status_code == 507
        # Reads keep working and see only acknowledged writes.
        for i in range(5):
            assert requests.get(u + "/k/early%d" % i).content == b"E" * 1000
        # An operator's delete is a write like any other: refused, and said so (it was
        # answered "deleted" while nothing was).
        r = d.control({"cmd": "delete", "binding": "KV", "name": "full", "confirm": True})
        assert not r.get("ok") and "No space" in r.get("error", ""), r
        assert requests.get(u + "/k/early0").content == b"E" * 1000
        assert requests.get(d.url + "/counter/c").text == "1"
        first_refused = codes.index(507)
        assert requests.get(u + "/k/big%03d" % first_refused).status_code == 404
        # Space back: writes succeed again.
        filler.unlink()
        (small_fs / "filler2").unlink()
        conftest.wait_until(lambda: all_cores_answer(d, probes, 200), 5,
                            what="every core to accept writes again")
        assert requests.post(d.url + "/counter/c").text == "2"
        assert requests.put(u + "/k/after", data=b"ok").status_code == 204
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    # Nothing corrupted: a restart on the same directory sees everything acknowledged.
    d2 = conftest.start_on(tmp_path, "again", small_fs / "data", config=config)
    try:
        assert requests.get(d2.url + "/counter/c").text == "2"
        assert requests.get(d2.url + "/kv/full/k/after").text == "ok"
        assert requests.get(d2.url + "/kv/full/k/early0").content == b"E" * 1000
    finally:
        assert d2.stop() == 0
