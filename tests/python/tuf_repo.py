"""Build or update a TUF repository with python-tuf's metadata API.

Usage:
  tuf_repo.py init DIR NAME=FILE...    keys, then root/targets/snapshot/timestamp v1
  tuf_repo.py update DIR NAME=FILE...  new targets/snapshot/timestamp versions with
                                       these targets added or replaced, and a root v2
                                       that rotates the timestamp key (signed by the
                                       root key), when root is still at v1

DIR/metadata and DIR/targets are the layout of a static mirror
(consistent_snapshot: metadata as N.ROLE.json, targets under HASH.NAME for each
hash, and under their plain name too). DIR/keys holds the private keys (PEM).
Every role has one ed25519 key made by securesystemslib's CryptoSigner.

Each target carries `sha256` (what python-tuf computes) and `blake3` (the
content address clive-node resolves names to; from the PyPI `blake3` package,
since hashlib has none). Prints one JSON object on stdout: for each target its
length and hashes, and the version of each role.
"""

import hashlib
import json
import os
import shutil
import sys
from datetime import datetime, timedelta, timezone

import blake3
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

ROLES = [Root.type, Targets.type, Snapshot.type, Timestamp.type]


def expiry(days: int = 30) -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days)


def save_key(dir_: str, name: str, signer: CryptoSigner) -> None:
    with open(os.path.join(dir_, "keys", f"{name}.pem"), "wb") as f:
        f.write(signer.private_bytes)


def load_key(dir_: str, name: str) -> CryptoSigner:
    with open(os.path.join(dir_, "keys", f"{name}.pem"), "rb") as f:
        private = load_pem_private_key(f.read(), password=None)
    return CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))


def target_file(name: str, path: str) -> TargetFile:
    with open(path, "rb") as f:
        data = f.read()
    return TargetFile(
        length=len(data),
        hashes={
            "sha256": hashlib.sha256(data).hexdigest(),
            "blake3": blake3.blake3(data).hexdigest(),
        },
        path=name,
    )


def write_targets(dir_: str, targets: dict[str, str]) -> dict[str, TargetFile]:
    """Copies each file under its plain name and under HASH.NAME per hash."""
    out = {}
    for name, path in targets.items():
        info = target_file(name, path)
        parent, base = os.path.split(name)
        tdir = os.path.join(dir_, "targets", parent)
        os.makedirs(tdir, exist_ok=True)
        shutil.copyfile(path, os.path.join(tdir, base))
        for digest in info.hashes.values():
            shutil.copyfile(path, os.path.join(tdir, f"{digest}.{base}"))
        out[name] = info
    return out


def write(dir_: str, md: Metadata, signer: CryptoSigner, *extra: CryptoSigner) -> None:
    md.sign(signer)
    for s in extra:
        md.sign(s, append=True)
    role = md.signed.type
    meta = os.path.join(dir_, "metadata")
    if role == Timestamp.type:
        md.to_file(os.path.join(meta, "timestamp.json"))
    else:
        md.to_file(os.path.join(meta, f"{md.signed.version}.{role}.json"))
        if role == Root.type:
            md.to_file(os.path.join(meta, "root.json"))


def publish(dir_: str, root: Metadata, targets: Metadata, signers) -> None:
    """Signs targets, then a snapshot and a timestamp that point at it."""
    write(dir_, targets, signers[Targets.type])
    meta = os.path.join(dir_, "metadata")
    snap_path = os.path.join(meta, "snapshot.json")
    if os.path.exists(snap_path):
        snapshot = Metadata.from_file(snap_path)
        snapshot.signed.version += 1
    else:
        snapshot = Metadata(Snapshot(expires=expiry()))
    snapshot.signed.expires = expiry()
    snapshot.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
    write(dir_, snapshot, signers[Snapshot.type])
    snapshot.to_file(snap_path)  # the current one, to bump next time

    ts_path = os.path.join(meta, "timestamp.json")
    if os.path.exists(ts_path):
        timestamp = Metadata.from_file(ts_path)
        timestamp.signed.version += 1
    else:
        timestamp = Metadata(Timestamp(expires=expiry(1)))
    timestamp.signed.expires = expiry(1)
    timestamp.signed.snapshot_meta = MetaFile(version=snapshot.signed.version)
    write(dir_, timestamp, signers[Timestamp.type])


def parse_targets(args: list[str]) -> dict[str, str]:
    targets = {}
    for arg in args:
        name, sep, path = arg.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"expected NAME=FILE, got {arg!r}")
        targets[name] = path
    return targets


def summary(root: Metadata, targets: Metadata, infos: dict[str, TargetFile]) -> dict:
    return {
        "root": root.signed.version,
        "targets": targets.signed.version,
        "files": {
            name: {"length": t.length, "hashes": t.hashes} for name, t in infos.items()
        },
    }


def init(dir_: str, files: dict[str, str]) -> dict:
    os.makedirs(os.path.join(dir_, "metadata"))
    os.makedirs(os.path.join(dir_, "keys"))
    signers = {role: CryptoSigner.generate_ed25519() for role in ROLES}
    for role, signer in signers.items():
        save_key(dir_, role, signer)
    root = Metadata(Root(expires=expiry(365), consistent_snapshot=True))
    for role, signer in signers.items():
        root.signed.add_key(signer.public_key, role)
    write(dir_, root, signers[Root.type])

    infos = write_targets(dir_, files)
    targets = Metadata(Targets(expires=expiry()))
    targets.signed.targets.update(infos)
    publish(dir_, root, targets, signers)
    return summary(root, targets, infos)


def update(dir_: str, files: dict[str, str]) -> dict:
    signers = {role: load_key(dir_, role) for role in ROLES}
    meta = os.path.join(dir_, "metadata")
    root = Metadata.from_file(os.path.join(meta, "root.json"))
    if root.signed.version == 1:
        # Rotate the timestamp key: root v2, signed by the root key.
        old = signers[Timestamp.type]
        new = CryptoSigner.generate_ed25519()
        save_key(dir_, Timestamp.type, new)
        root.signed.revoke_key(old.public_key.keyid, Timestamp.type)
        root.signed.add_key(new.public_key, Timestamp.type)
        root.signed.version += 1
        write(dir_, root, signers[Root.type])
        signers[Timestamp.type] = new

    versions = [
        int(f.split(".")[0])
        for f in os.listdir(meta)
        if f.endswith(".targets.json") and f.split(".")[0].isdigit()
    ]
    targets = Metadata.from_file(os.path.join(meta, f"{max(versions)}.targets.json"))
    targets.signed.version += 1
    targets.signed.expires = expiry()
    infos = write_targets(dir_, files)
    targets.signed.targets.update(infos)
    publish(dir_, root, targets, signers)
    return summary(root, targets, infos)


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[1] not in ("init", "update"):
        print(__doc__, file=sys.stderr)
        return 2
    action, dir_, files = sys.argv[1], sys.argv[2], parse_targets(sys.argv[3:])
    result = (init if action == "init" else update)(dir_, files)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
