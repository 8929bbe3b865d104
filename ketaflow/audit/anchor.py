"""The audit trail's anchor: a key and a file kept outside the database.

Someone who can write to the database can rewrite the hash chains, since SHA-256 alone needs
no secret. Two things here survive that:

- **The audit key** (``KETAFLOW_AUDIT_KEY``, or generated once into
  ``settings.KETAFLOW_AUDIT_KEY_FILE`` with mode 600). Every event's hash is an HMAC-SHA256
  under it, so an event changed, rehashed or forged without the key no longer verifies.
- **The anchor file** (``settings.KETAFLOW_AUDIT_ANCHOR``, append-only JSON lines). Each line
  records where chains ended at one moment (checkpoints), carries the HMAC of the line before
  it and its own HMAC; together the lines are the registry of every chain and its expected
  end, so a chain that was deleted, truncated or rewritten before its last checkpoint is
  found. The database keeps the number and HMAC of the anchor's last line
  (``AuditAnchorMark``), so lines removed from the anchor's end are found too.

Line 1 ("open") also records the key's fingerprint and, per chain, how many events were
hashed without a key before the anchor was started (``legacy``). See docs/security.md,
"Audit trail integrity".
"""

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from ketaflow.config import ConfigError

KEY_ENV = "KETAFLOW_AUDIT_KEY"
MIN_KEY_LENGTH = 32
_EVENT_DOMAIN = b"ketaflow-audit-event\0"
_LINE_DOMAIN = b"ketaflow-audit-anchor\0"
_FINGERPRINT_DOMAIN = b"ketaflow-audit-fingerprint\0"

log = logging.getLogger(__name__)


class AnchorError(Exception):
    """The anchor cannot be read or trusted; the message names the line and what to do."""


# --- the key ------------------------------------------------------------------------------

# The key, read once per process (and again by every verify and checkpoint, reload_key), for
# the settings value it was read under: record() pays a dictionary-free identity check.
_key: bytes = b""
_key_source: object = None


def _create_key(path: Path) -> str:
    """Write a new random key to ``path`` (mode 600) unless another process won the race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # atomic: the file appears complete or not at all
        except FileExistsError:
            key = path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return key


def _load_key() -> bytes:
    value = os.environ.get(KEY_ENV, "").strip()
    if value:
        if len(value) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"{KEY_ENV} is shorter than {MIN_KEY_LENGTH} characters: use a long random key."
            )
        return value.encode()
    path = Path(settings.KETAFLOW_AUDIT_KEY_FILE)
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        try:
            value = _create_key(path)
        except OSError as exc:
            raise ConfigError(
                f"The audit key {path} cannot be created ({exc.strerror}): make its directory "
                f"writable, or set {KEY_ENV} or KETAFLOW_AUDIT_KEY_FILE."
            ) from exc
    except OSError as exc:
        raise ConfigError(f"The audit key {path} cannot be read ({exc.strerror}).") from exc
    if len(value) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"{path} holds an audit key shorter than {MIN_KEY_LENGTH} characters: restore the "
            "key from its backup (a new key makes every existing event fail verification)."
        )
    return value.encode()


def key() -> bytes:
    global _key, _key_source
    source = settings.KETAFLOW_AUDIT_KEY_FILE
    if source is not _key_source or not _key:
        _key, _key_source = _load_key(), source
    return _key


def reload_key() -> None:
    """Forget the cached key: checks read it afresh (a key file replaced, or the environment
    changed, under a running process is then noticed by the next verify or checkpoint)."""
    global _key
    _key = b""


def event_mac(data: bytes) -> str:
    """HMAC-SHA256 of an event's canonical bytes under the audit key (hex).

    One OpenSSL call (hmac.digest): about 2 microseconds more than the plain SHA-256.
    """
    return hmac.digest(key(), _EVENT_DOMAIN + data, "sha256").hex()


def fingerprint() -> str:
    """Names the key without revealing it (an HMAC of a constant under the key)."""
    return hmac.new(key(), _FINGERPRINT_DOMAIN, hashlib.sha256).hexdigest()[:16]


def _line_mac(body: dict) -> str:
    return hmac.new(key(), _LINE_DOMAIN + canonical(body), hashlib.sha256).hexdigest()


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


# --- the file -------------------------------------------------------------------------------


def path() -> Path:
    return Path(settings.KETAFLOW_AUDIT_ANCHOR)


@dataclass
class Anchor:
    """The anchor file, checked line by line and folded into a registry of chains."""

    lines: int = 0
    macs: list[str] = field(default_factory=list)
    started: str = ""
    last_at: str = ""
    legacy: dict[str, int] = field(default_factory=dict)
    # chain -> {seq: hash} of every checkpoint, and chain -> (seq, hash, at) of the furthest.
    checkpoints: dict[str, dict[int, str]] = field(default_factory=dict)
    ends: dict[str, tuple[int, str, str]] = field(default_factory=dict)

    @property
    def last_mac(self) -> str:
        return self.macs[-1] if self.macs else ""


def _check_line(raw: bytes, number: int, prev: str) -> dict:
    """One line, parsed and checked (number, key, MAC, link to the line before)."""
    where = f"anchor line {number} ({path()})"
    try:
        line = json.loads(raw)
        body = {k: v for k, v in line.items() if k != "mac"}
        mac = line["mac"]
    except (ValueError, AttributeError, KeyError, TypeError):
        raise AnchorError(
            f"{where} is not a complete anchor record: the file was changed"
        ) from None
    if body.get("n") != number:
        raise AnchorError(
            f"{where} is numbered {body.get('n')!r}: lines were removed, added or reordered"
        )
    if number == 1 and body.get("key") != fingerprint():
        raise AnchorError(
            f"{where} was written with another audit key (fingerprint {body.get('key')}; this "
            f"server's key has {fingerprint()}): restore the key that wrote the anchor"
        )
    if not hmac.compare_digest(str(mac), _line_mac(body)):
        raise AnchorError(f"{where} was changed: its HMAC does not match its content")
    if body.get("prev", "") != prev:
        raise AnchorError(
            f"{where} does not follow line {number - 1}: lines were removed or replaced"
        )
    return line


def parse(data: bytes) -> Anchor:
    anchor = Anchor()
    if data and not data.endswith(b"\n"):
        raise AnchorError(
            f"the last line of the anchor {path()} is incomplete (a crash while writing, or "
            "the file was cut): compare it with its backup"
        )
    for number, raw in enumerate(data.splitlines(), start=1):
        line = _check_line(raw, number, anchor.last_mac)
        anchor.lines = number
        anchor.macs.append(line["mac"])
        anchor.last_at = line.get("at", "")
        if line.get("kind") == "open":
            anchor.started = line.get("at", "")
            anchor.legacy = {k: int(v) for k, v in line.get("legacy", {}).items()}
        for chain, (seq, digest) in line.get("chains", {}).items():
            anchor.checkpoints.setdefault(chain, {})[int(seq)] = digest
            if chain not in anchor.ends or anchor.ends[chain][0] < int(seq):
                anchor.ends[chain] = (int(seq), digest, line.get("at", ""))
    return anchor


def read() -> Anchor | None:
    """The anchor, every line checked; None if the file does not exist or is empty (the
    database's line count tells whether it should have lines)."""
    try:
        handle = path().open("rb")
    except FileNotFoundError:
        return None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        data = handle.read()
    return parse(data) if data else None


def read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0) if size else b""


@contextmanager
def locked(*, create: bool = False, blocking: bool = True):
    """The anchor file open for appending, under an exclusive lock (yields its fd)."""
    p = path()
    flags = os.O_RDWR | os.O_APPEND
    if create:
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags |= os.O_CREAT
    fd = os.open(p, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield fd
    finally:
        os.close(fd)


def append(fd: int, anchor: Anchor, *, kind: str, chains: dict, **extra) -> dict:
    """Write the next line (under the lock of ``locked``) and fsync it; update ``anchor``."""
    body = {
        "n": anchor.lines + 1,
        "prev": anchor.last_mac,
        "at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "kind": kind,
        "chains": {k: [seq, digest] for k, (seq, digest) in sorted(chains.items())},
        **extra,
    }
    line = {**body, "mac": _line_mac(body)}
    os.write(fd, canonical(line) + b"\n")
    os.fsync(fd)
    anchor.lines += 1
    anchor.macs.append(line["mac"])
    anchor.last_at = body["at"]
    for chain, (seq, digest) in chains.items():
        anchor.checkpoints.setdefault(chain, {})[seq] = digest
        if chain not in anchor.ends or anchor.ends[chain][0] < seq:
            anchor.ends[chain] = (seq, digest, body["at"])
    _advance_mark(anchor.lines, line["mac"])
    return line


def _advance_mark(lines: int, mac: str) -> None:
    """Record the anchor's length in the database (only ever forwards)."""
    from ketaflow.audit.models import AuditAnchorMark

    now = datetime.now(UTC)
    if not AuditAnchorMark.objects.filter(pk=1, lines__lt=lines).update(
        lines=lines, mac=mac, at=now
    ):
        AuditAnchorMark.objects.bulk_create(
            [AuditAnchorMark(pk=1, lines=lines, mac=mac, at=now)], ignore_conflicts=True
        )


def _last_line(fd: int) -> bytes:
    """The file's last line, read backwards from its end (a checkpoint need not read it all)."""
    size = os.fstat(fd).st_size
    chunk, data = 65536, b""
    while True:
        start = max(0, size - len(data) - chunk)
        data = os.pread(fd, size - len(data) - start, start) + data
        body = data[:-1] if data.endswith(b"\n") else data
        cut = body.rfind(b"\n")
        if cut >= 0 or start == 0:
            return body[cut + 1 :]


def checkpoint_one(chain: str, seq: int, digest: str) -> bool:
    """Anchor one chain's end just written by this process (the every-Nth-event checkpoint).

    Runs after the event's transaction committed. Only appends to an anchor already started,
    never waits for a full checkpoint in progress (that one anchors this chain as well) and
    never fails the request: problems are logged for the periodic checkpoint to report.
    """
    try:
        with locked(blocking=False) as fd:
            anchor = Anchor()
            if os.fstat(fd).st_size:
                raw = _last_line(fd)
                last = json.loads(raw)
                anchor.lines = int(last["n"])
                _check_line(raw, anchor.lines, last.get("prev", ""))
                anchor.macs = [last["mac"]]
            else:
                return False
            append(fd, anchor, kind="checkpoint", chains={chain: (seq, digest)})
            return True
    except (FileNotFoundError, BlockingIOError):
        return False
    except (AnchorError, OSError, ValueError, KeyError, TypeError) as exc:
        log.error("audit anchor: checkpoint of %s at #%s not written: %s", chain, seq, exc)
        return False
