"""Writes the seed inputs of the fuzz targets: one valid input (or a few)
per target, so the fuzzer starts from the format rather than from nothing.

Usage: python3 fuzz/seeds/make.py   (needs ssh-keygen and the PyPI blake3
package, e.g. the venv of scripts/install-test-deps)

The seeds are committed; rerun this only when a format changes. Each
target's layout of its input (a leading mode or table byte) is described
in fuzz/fuzz_targets/TARGET.rs.
"""

import base64
import json
import os
import struct
import subprocess
import tempfile

import blake3

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


def tree(entries):
    out = b"clive-tree" + bytes([1]) + struct.pack("<I", len(entries))
    for kind, name, size, h in sorted(entries, key=lambda e: e[1]):
        out += bytes([kind]) + struct.pack("<H", len(name)) + name
        out += struct.pack("<Q", size) + h
    return out


def seal(prefix, payload):
    body = bytes([1]) + payload
    body += blake3.blake3(body).digest()[:4]
    return prefix + base64.b32encode(body).decode().rstrip("=").lower()


def addrs():
    return (bytes([2, 4, 127, 0, 0, 1]) + struct.pack(">H", 4242)
            + bytes([6]) + bytes(15) + bytes([1]) + struct.pack(">H", 4243))


def frame(kind, payload):
    return struct.pack(">I", len(payload) + 1) + bytes([kind]) + payload


def signed_docs(tmp):
    key = os.path.join(tmp, "key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key],
                   check=True)
    line = " ".join(open(key + ".pub").read().split()[:2])

    def sign(namespace, body):
        path = os.path.join(tmp, "body")
        with open(path, "w") as f:
            f.write(body)
        subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", key, path],
                       check=True, capture_output=True)
        return body + open(path + ".sig").read()

    body = ("clive-cert v1\n"
            f"issuer {line}\nsubject {line}\ncapabilities exec,fetch,push\n"
            "delegate 1\nvalid-from 2026-01-02T03:04:05Z\n"
            "valid-until 2027-01-02T03:04:05Z\nnonce 00112233445566778899aabbccddeeff\n")
    cert = sign("clive-cert", body)
    write("cert_body", "valid", body)
    write("certificate", "valid", b"\0" + cert.encode())
    write("certificate", "fields", b"\x01\x07\x02" + bytes(range(80)))
    cert_id = blake3.blake3(cert.encode()).hexdigest()
    rev = sign("clive-revocation",
               f"clive-revocation v1\ncertificate {cert_id}\nrevoker {line}\n"
               "revoked-at 2026-06-01T00:00:00Z\n")
    write("revocation", "valid", b"\0" + rev.encode())
    write("revocation", "fields", b"\x01" + bytes(range(40)))


def tuf_docs():
    keyid = "ab" * 32
    key = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "cd" * 32}}
    sigs = [{"keyid": keyid, "sig": "ef" * 64}]
    common = {"spec_version": "1.0.31", "version": 3, "expires": "2030-01-01T00:00:00Z"}
    role = {"keyids": [keyid], "threshold": 1}
    root = dict(common, _type="root", consistent_snapshot=True, keys={keyid: key},
                roles={r: role for r in ["root", "timestamp", "snapshot", "targets"]})
    target = {"length": 5, "hashes": {"sha256": "00" * 32, "blake3": "11" * 32},
              "custom": {"kind": "blob"}}
    targets = dict(common, _type="targets", targets={"hello": target},
                   delegations={"keys": {keyid: key}, "succinct_roles": {
                       "keyids": [keyid], "threshold": 1, "bit_length": 4,
                       "name_prefix": "bin"}})
    delegated = dict(targets, delegations={"keys": {keyid: key}, "roles": [dict(
        role, name="team", terminating=False, paths=["team/*"])]})
    snapshot = dict(common, _type="snapshot", meta={
        "targets.json": {"version": 3, "length": 100, "hashes": {"sha256": "22" * 32}}})
    timestamp = dict(common, _type="timestamp", meta={"snapshot.json": {"version": 3}})
    for name, doc in [("root", root), ("targets", targets), ("snapshot", snapshot),
                      ("timestamp", timestamp)]:
        write(f"tuf_{name}", "valid", json.dumps({"signed": doc, "signatures": sigs}, indent=1))
        write("canonical_json", name, json.dumps(doc))
    write("tuf_targets", "delegated", json.dumps({"signed": delegated, "signatures": sigs}))


def canonical(doc):
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def job_docs(tmp):
    """Seeds of job_documents: the first byte is the mode (see its target)."""
    key = os.path.join(tmp, "jobkey")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    line = " ".join(open(key + ".pub").read().split()[:2])
    doc = {"version": 1, "argv": ["make", "-C", "src"], "env": {"PATH": "/usr/bin:/bin"},
           "inputs": {"src": {"hash": "11" * 32, "name": "zone/src"}, "lib": {"hash": "22" * 32}},
           "workdir": "", "platform": {"os": "linux", "features": ["gpu"], "unknown": ["ram=8G"]},
           "timeout_ms": 600000, "outputs": ["app", "out/log"],
           "limits": {"output_bytes": 1 << 30, "log_bytes": 1 << 20}, "sandbox": "landlock"}
    write("job_documents", "doc", b"\0" + canonical(doc).encode())
    result = {"version": 1, "job": blake3.blake3(canonical(doc).encode()).hexdigest(),
              "executor": line,
              "platform": {"os": "linux", "arch": "x86_64", "cores": 2, "features": ["gpu"],
                           "sandbox": ["none", "landlock"]},
              "sandbox": "landlock", "exit": {"signal": 9}, "timed_out": True,
              "cancelled": False, "outputs": "33" * 32, "missing_outputs": ["out/log"],
              "stdout": "44" * 32, "stderr": "55" * 32, "stdout_bytes": 3, "stderr_bytes": 0,
              "logs_truncated": False, "started": "2026-12-01T14:20:29Z",
              "ended": "2026-12-01T14:20:31Z", "cpu_ms": 12, "peak_memory_bytes": 4096}
    body = canonical(result)
    write("job_documents", "result", b"\x01" + body.encode())
    path = os.path.join(tmp, "result.json")
    with open(path, "w") as f:
        f.write(body)
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "clive-result", "-f", key, path],
                   check=True, capture_output=True)
    record = {"result": body, "signature": open(path + ".sig").read()}
    write("job_documents", "record", b"\x02\x01" + json.dumps(record).encode())
    write("job_documents", "jobfile", b"\x03" + b"""version = 1
argv = ["cc", "-o", "app", "main.c"]
workdir = "src"
outputs = ["app"]
timeout = "10m"
sandbox = "landlock"
on = "os=macos,arch=aarch64"

[inputs]
src = "./src"
lib = "zone/lib"

[env]
CC = "cc"

[limits]
output = "1 GiB"
log = 4096
""")
    write("job_documents", "requirements", b"\x04os=macos,arch=aarch64,feature=gpu,features=a+b,ram=8G")


def main():
    h = bytes(range(32))
    write("tree", "empty", tree([]))
    write("tree", "three", tree([(0, b"a.txt", 5, h), (1, b"run", 9, h), (2, b"link", 5, h),
                                 (3, b"sub", 14, h)]))
    write("ticket", "payload", b"\x01" + bytes(32) + bytes([9] * 32)
          + struct.pack(">Q", 1_900_000_000) + addrs())
    write("ticket", "text", b"\0" + seal("clive1", bytes(32) + bytes([9] * 32)
                                       + struct.pack(">Q", 1_900_000_000) + addrs()).encode())
    zone = bytes([3] * 32) + bytes([5] * 32) + bytes([6] * 16) + bytes([7]) + b"release"
    write("zone_ticket", "payload", b"\x01" + zone + addrs())
    write("zone_ticket", "text", b"\0" + seal("clivezone1", zone + addrs()).encode())
    for i, msg in enumerate([
        {"type": "hello", "addrs": ["127.0.0.1:4242", "[::1]:1"], "certs": ["c"]},
        {"type": "join", "secret": "00" * 32},
        {"type": "check", "cap": "fetch"},
        {"type": "push_offer", "hash": "11" * 32},
        {"type": "zone_index", "zone": "z"},
        {"type": "zone_submit", "zone": "z", "role": "bin-1", "hash": "22" * 32},
        {"type": "hello", "addrs": ["127.0.0.1:4242"]},
        {"type": "joined", "cert": "c"},
        {"type": "verdict", "allowed": True, "reason": "r"},
        {"type": "pushed", "bytes_received": 7},
        {"type": "zone_files", "files": [{"path": "timestamp.json", "hash": "33" * 32,
                                           "size": 9}]},
        {"type": "zone_accepted", "timestamp": 4},
        {"type": "refused", "reason": "no"},
    ]):
        write("peer_wire", f"msg{i}", json.dumps(msg))
    hello = json.dumps({"protocol": "clive-control", "version": 1, "pid": 7}).encode()
    call = json.dumps({"cwd": "/tmp", "request": {"op": "status"}}).encode()
    write("control_frames", "client", frame(1, hello) + frame(2, call) + frame(3, b"data")
          + frame(4, b""))
    write("control_frames", "daemon", frame(1, hello)
          + frame(5, bytes([1]) + struct.pack(">QQ", 10, 3)) + frame(3, b"out")
          + frame(6, b'{"reply":') + frame(7, b'"stopped"}')
          + frame(8, json.dumps({"message": "failed"}).encode()))
    write("naming_records", "accepted", b"\0" + struct.pack(">QQ", 1, 2) + b"{}")
    for table, name, rec in [
        (1, "zone", {"id": "ab", "publisher": True, "origin": "o", "mirror": "http://m/",
                     "since": 1, "verified": {"at": 1, "root": 1, "timestamp": 2,
                                              "snapshot": 3, "targets": 4, "expires": 5,
                                              "expires_role": "root"}}),
        (2, "name", {"hash": "00" * 32, "kind": "blob", "length": 3, "version": 2,
                     "role": "bin-1"}),
        (3, "override", {"hash": "00" * 32, "kind": "tree", "at": 9}),
        (4, "log", {"at": 9, "event": "override", "hash": "00" * 32}),
        (5, "evidence", {"at": 9, "trusted": "7b7d", "other": "5b5d", "source": "peer"}),
    ]:
        write("naming_records", name, bytes([table]) + json.dumps(rec).encode())
    for i, body in enumerate([
        {"type": "addrs", "addrs": ["127.0.0.1:4242", "[::1]:9"]},
        {"type": "revocation", "revocation": "clive-revocation v1\n"},
        {"type": "zone", "zone": "ab" * 16, "version": 3},
    ]):
        write("announcement", f"body{i}", b"\x01" + json.dumps(body).encode())
    signed = json.dumps({"origin": "ab" * 32, "at": 1_800_000_000,
                         "body": {"type": "zone", "zone": "z", "version": 1}})
    write("announcement", "envelope", b"\0" + json.dumps({"body": signed, "sig": "cd" * 64})
          .encode())
    write("net_records", "peer", b"\0" + json.dumps(
        {"addrs": ["127.0.0.1:4919"], "added": 1, "last_seen": 2}).encode())
    write("net_records", "invite", b"\x01" + json.dumps(
        {"caps": "fetch,push", "expires": 9, "uses_left": 1, "cert_valid_secs": 60}).encode())
    tuf_docs()
    with tempfile.TemporaryDirectory() as tmp:
        signed_docs(tmp)
        job_docs(tmp)


main()
