"""Append-only, hash-chained audit log with HMAC-signed checkpoints.

Chain: rows have ``seq`` = 1, 2, 3, … with no gaps, and
``row_hash = SHA-256(prev_hash ‖ canonical_json(row))`` where ``prev_hash`` is the previous row's
``row_hash`` (32 zero bytes for ``seq`` 1), both as raw bytes, and ``canonical_json`` is
:func:`canonical_row` (sorted keys, no spaces, UTF-8, ``seq`` included, time as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``). Hashes are stored as lowercase hex.

Checkpoints: ``HMAC-SHA256(key, canonical_json({v, head_seq, head_hash, row_count, created_at,
key_id, prev_signature}))``. The key lives outside the database, so someone who edits rows *and*
recomputes the chain still cannot produce a checkpoint that :func:`verify_audit` accepts. Each
checkpoint signs the previous one's signature, so deleting a checkpoint in the middle is detected.

Appends are linear under concurrency: SQLite transactions start with ``BEGIN IMMEDIATE`` (see
:func:`calendar_backend.storage.create_engine`); on PostgreSQL :func:`append_audit` and
:func:`write_checkpoint` take ``pg_advisory_xact_lock`` before reading the head. The lock is held
until the caller's transaction ends, so keep those transactions short (no Graph calls inside).

There is no update or delete API, and :class:`AuditEvent` has no free-text field.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from calendar_backend.storage import UTCDateTime, metadata

GENESIS_HASH: Final = "00" * 32
_AUDIT_LOCK: Final = 0x4F70656E536C0002  # pg_advisory_xact_lock key for the chain head
_BATCH: Final = 1000
_MIN_KEY_BYTES: Final = 32
_CODE: Final = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
_IDENT: Final = re.compile(r"[^\x00-\x20\x7f]{1,320}")

audit_log: Final = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("actor_oid", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("targets", sa.JSON, nullable=False),
    sa.Column("result", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("graph_request_ids", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_tenant_at", "tenant_id", "at"),
)

audit_checkpoints: Final = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("head_seq", sa.BigInteger, nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("key_id", sa.Integer, nullable=False),
    sa.Column("prev_signature", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(64), nullable=False),
)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited action. Identifiers and codes only; there is deliberately no free-text field.

    ``operation`` and ``result`` are lowercase codes
    (``[a-z][a-z0-9_.:-]{0,63}``, e.g. ``freebusy_read``, ``ok``, ``denied:tenant``); ids and
    targets must not contain whitespace or control characters.
    ``at`` must be aware; it is normalised to UTC. Raises ``ValueError`` otherwise.
    """

    tenant_id: str
    actor_oid: str
    operation: str
    targets: tuple[str, ...]
    result: str
    at: datetime
    request_id: str
    graph_request_ids: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("AuditEvent.at must be an aware datetime")
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "graph_request_ids", tuple(self.graph_request_ids))
        for name in ("operation", "result"):
            if not _CODE.fullmatch(getattr(self, name)):
                raise ValueError(f"AuditEvent.{name} must be a lowercase code")
        idents = (
            self.tenant_id,
            self.actor_oid,
            self.request_id,
            *self.targets,
            *self.graph_request_ids,
        )
        if not all(isinstance(v, str) and _IDENT.fullmatch(v) for v in idents):
            raise ValueError("AuditEvent ids must be 1-320 visible characters")


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Outcome of :func:`verify_audit`; ``first_broken_seq`` is the first untrusted row."""

    ok: bool
    rows: int
    first_broken_seq: int | None
    reason: str
    truncated: bool = False  # a signed checkpoint covers rows that are no longer there
    checkpoints_checked: int = 0


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: the chain had ``row_count`` rows, ending in ``head_hash``."""

    head_seq: int
    head_hash: str
    row_count: int
    created_at: datetime
    key_id: int
    prev_signature: str
    signature: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, for exporting off-box."""
        return {
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "row_count": self.row_count,
            "created_at": _iso(self.created_at),
            "key_id": self.key_id,
            "prev_signature": self.prev_signature,
            "signature": self.signature,
        }


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical_row(seq: int, event: AuditEvent) -> bytes:
    """The exact bytes hashed for row ``seq`` (see the module docstring)."""
    return _canonical(
        {
            "seq": seq,
            "tenant_id": event.tenant_id,
            "actor_oid": event.actor_oid,
            "operation": event.operation,
            "targets": list(event.targets),
            "result": event.result,
            "at": _iso(event.at),
            "request_id": event.request_id,
            "graph_request_ids": list(event.graph_request_ids),
        }
    )


def chain_hash(prev_hash: str, seq: int, event: AuditEvent) -> str:
    """``SHA-256(bytes.fromhex(prev_hash) ‖ canonical_row(seq, event))`` as lowercase hex."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_row(seq, event)).hexdigest()


def _signature(key: bytes, cp: Checkpoint) -> str:
    message = _canonical(
        {
            "v": 1,
            "head_seq": cp.head_seq,
            "head_hash": cp.head_hash,
            "row_count": cp.row_count,
            "created_at": _iso(cp.created_at),
            "key_id": cp.key_id,
            "prev_signature": cp.prev_signature,
        }
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()


async def _lock_head(tx: AsyncConnection) -> None:
    if tx.dialect.name == "postgresql":
        await tx.execute(sa.select(sa.func.pg_advisory_xact_lock(_AUDIT_LOCK)))


async def _head(tx: AsyncConnection) -> tuple[int, str]:
    query = sa.select(audit_log.c.seq, audit_log.c.row_hash).order_by(audit_log.c.seq.desc())
    row = (await tx.execute(query.limit(1))).first()
    return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.row_hash))


async def append_audit(tx: AsyncConnection, event: AuditEvent) -> int:
    """Append ``event`` to the chain inside the caller's transaction; returns its ``seq``.

    If the caller's transaction rolls back, the row is gone too (audit and state change are atomic).
    """
    await _lock_head(tx)
    head_seq, head_hash = await _head(tx)
    seq = head_seq + 1
    await tx.execute(
        sa.insert(audit_log).values(
            seq=seq,
            tenant_id=event.tenant_id,
            actor_oid=event.actor_oid,
            operation=event.operation,
            targets=list(event.targets),
            result=event.result,
            at=event.at,
            request_id=event.request_id,
            graph_request_ids=list(event.graph_request_ids),
            prev_hash=head_hash,
            row_hash=chain_hash(head_hash, seq, event),
        )
    )
    return seq


async def write_checkpoint(
    tx: AsyncConnection, key_id: int, signing_key: bytes, *, at: datetime | None = None
) -> Checkpoint:
    """Sign and store the current head. ``signing_key`` (≥ 32 bytes) must not live in the database.

    Returns the checkpoint; export ``to_dict()`` off-box. Raises ``ValueError`` for a short key.
    """
    if len(signing_key) < _MIN_KEY_BYTES:
        raise ValueError("checkpoint signing key must be at least 32 bytes")
    await _lock_head(tx)
    head_seq, head_hash = await _head(tx)
    count = int((await tx.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar_one())
    last = await tx.execute(
        sa.select(audit_checkpoints.c.signature).order_by(audit_checkpoints.c.id.desc()).limit(1)
    )
    prev_signature = last.scalar_one_or_none() or ""
    unsigned = Checkpoint(
        head_seq=head_seq,
        head_hash=head_hash,
        row_count=count,
        created_at=datetime.now(UTC) if at is None else at.astimezone(UTC),
        key_id=key_id,
        prev_signature=prev_signature,
        signature="",
    )
    checkpoint = Checkpoint(**{**_fields(unsigned), "signature": _signature(signing_key, unsigned)})
    await tx.execute(sa.insert(audit_checkpoints).values(**_fields(checkpoint)))
    return checkpoint


def _fields(cp: Checkpoint) -> dict[str, Any]:
    return {name: getattr(cp, name) for name in Checkpoint.__slots__}


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class _Break:
    seq: int
    reason: str


def _event(row: sa.Row[Any]) -> AuditEvent:
    return AuditEvent(
        tenant_id=row.tenant_id,
        actor_oid=row.actor_oid,
        operation=row.operation,
        targets=tuple(row.targets),
        result=row.result,
        at=row.at,
        request_id=row.request_id,
        graph_request_ids=tuple(row.graph_request_ids),
    )


async def _rows(
    conn: AsyncConnection,
    where: sa.ColumnElement[bool] | None = None,
) -> AsyncIterator[sa.Row[Any]]:
    last = 0
    while True:
        query = sa.select(audit_log).where(audit_log.c.seq > last)
        if where is not None:
            query = query.where(where)
        batch = list(await conn.execute(query.order_by(audit_log.c.seq).limit(_BATCH)))
        for row in batch:
            yield row
        if len(batch) < _BATCH:
            return
        last = int(batch[-1].seq)


def _check_row(row: sa.Row[Any], expected_seq: int, prev_hash: str) -> str | None:
    if row.seq != expected_seq:
        return f"row {expected_seq} is missing or out of order (found {row.seq})"
    if row.prev_hash != prev_hash:
        return "prev_hash does not link to the previous row"
    try:
        computed = chain_hash(prev_hash, expected_seq, _event(row))
    except ValueError:
        return "row content is malformed"
    if computed != row.row_hash:
        return "row content does not match its hash"
    return None


async def _walk_chain(conn: AsyncConnection, checkpoints: list[Checkpoint]) -> tuple[int, _Break | None]:
    """Walk rows in seq order; returns (rows seen, first break of the chain or of a checkpoint)."""
    by_seq: dict[int, list[Checkpoint]] = {}
    for cp in checkpoints:
        by_seq.setdefault(cp.head_seq, []).append(cp)
    expected, prev_hash, covered = 1, GENESIS_HASH, 0
    async for row in _rows(conn):
        problem = _check_row(row, expected, prev_hash)
        if problem is not None:
            return expected - 1, _Break(expected, problem)
        for cp in by_seq.get(expected, []):
            if cp.head_hash != row.row_hash or cp.row_count != expected:
                return expected, _Break(
                    covered + 1,
                    f"rows up to {cp.head_seq} were rewritten: they differ from their signed checkpoint",
                )
            covered = expected
        prev_hash, expected = row.row_hash, expected + 1
    beyond = [cp for cp in checkpoints if cp.head_seq >= expected]
    if beyond:
        last = max(cp.head_seq for cp in beyond)
        return expected - 1, _Break(
            expected,
            f"the chain was truncated: rows {expected}..{last} are missing but covered by a "
            "signed checkpoint",
        )
    return expected - 1, None


def _check_signatures(
    checkpoints: list[Checkpoint], keys: Mapping[int, bytes] | bytes | None
) -> _Break | None:
    """Off-box checkpoints: each must carry a valid signature (their order is not checked)."""
    for index, cp in enumerate(checkpoints, start=1):
        if keys is None:
            return None
        key = keys if isinstance(keys, bytes) else keys.get(cp.key_id)
        if key is None or not hmac.compare_digest(_signature(key, cp), cp.signature):
            return _Break(1, f"off-box checkpoint {index} is not signed with a key of this keyring")
    return None


def load_checkpoint_file(path: Path) -> list[Checkpoint]:
    """The checkpoints in a JSON-lines file as ``audit checkpoint`` appends them.

    Raises:
        OSError: the file cannot be read.
        ValueError: a line is not a checkpoint.
    """
    found: list[Checkpoint] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        if not isinstance(doc, dict) or set(doc) < set(Checkpoint.__slots__):
            raise ValueError("not a checkpoint")
        values = {name: doc[name] for name in Checkpoint.__slots__}
        ints = [values[n] for n in ("head_seq", "row_count", "key_id")]
        strs = [values[n] for n in ("head_hash", "prev_signature", "signature", "created_at")]
        if not all(type(v) is int for v in ints) or not all(isinstance(v, str) for v in strs):
            raise ValueError("not a checkpoint")
        values["created_at"] = datetime.fromisoformat(values["created_at"].replace("Z", "+00:00"))
        found.append(Checkpoint(**values))
    return found


def _check_checkpoints(
    checkpoints: list[Checkpoint], keys: Mapping[int, bytes] | bytes | None
) -> _Break | None:
    prev_signature, covered = "", 0
    for index, cp in enumerate(checkpoints, start=1):
        if cp.prev_signature != prev_signature or cp.head_seq < covered:
            return _Break(covered + 1, f"checkpoint {index} does not follow the previous one")
        if keys is not None:
            key = keys if isinstance(keys, bytes) else keys.get(cp.key_id)
            if key is None:
                return _Break(covered + 1, f"checkpoint {index} uses unknown key {cp.key_id}")
            if not hmac.compare_digest(_signature(key, cp), cp.signature):
                return _Break(covered + 1, f"checkpoint {index} signature is invalid")
        prev_signature, covered = cp.signature, cp.head_seq
    return None


async def _load_checkpoints(conn: AsyncConnection) -> list[Checkpoint]:
    result = await conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.id))
    return [Checkpoint(**{name: getattr(row, name) for name in Checkpoint.__slots__}) for row in result]


async def verify_audit(
    conn: AsyncConnection,
    *,
    signing_key: bytes | Mapping[int, bytes] | None,
    external: Sequence[Checkpoint] = (),
) -> VerifyReport:
    """Check the whole chain and every checkpoint; report the first seq that cannot be trusted.

    Detects edited, deleted, inserted and reordered rows (at the first affected seq) and rows
    deleted from the end (when a checkpoint covered them). Given ``signing_key`` (one key, or keys
    by ``key_id``) it also rejects checkpoints not signed with it, which is what catches a chain
    recomputed by someone without the key. With ``signing_key=None`` signatures are not checked
    (the report says so).

    ``external`` are checkpoints kept off-box (``OPENSLOT_AUDIT_CHECKPOINT_FILE``): each must be
    signed with a key of the keyring, and the chain must agree with every one of them. This is
    what catches a chain rewritten or truncated by someone who also deleted the database's
    checkpoint rows.
    """
    checkpoints = await _load_checkpoints(conn)
    outside = list(external)
    rows, chain_break = await _walk_chain(conn, [*checkpoints, *outside])
    breaks = [
        b
        for b in (
            chain_break,
            _check_checkpoints(checkpoints, signing_key),
            _check_signatures(outside, signing_key),
        )
        if b
    ]
    checked = len(checkpoints) + len(outside)
    if breaks:
        first = min(breaks)
        return VerifyReport(
            ok=False,
            rows=rows,
            first_broken_seq=first.seq,
            reason=first.reason,
            truncated="truncated" in first.reason,
            checkpoints_checked=checked,
        )
    reason = "ok" if signing_key is not None else "ok; checkpoint signatures not checked"
    return VerifyReport(ok=True, rows=rows, first_broken_seq=None, reason=reason, checkpoints_checked=checked)


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


async def export_audit(
    conn: AsyncConnection, tenant_id: str, since: datetime
) -> AsyncIterator[dict[str, Any]]:
    """Yield the tenant's rows with ``at >= since`` in seq order, as JSON-serialisable dicts
    (times as UTC ISO 8601 with ``Z``; hashes included so an exported slice can be re-checked).
    Raises ``ValueError`` for a naive ``since``.
    """
    if since.tzinfo is None or since.utcoffset() is None:
        raise ValueError("since must be an aware datetime")
    where = sa.and_(audit_log.c.tenant_id == tenant_id, audit_log.c.at >= since)
    async for row in _rows(conn, where):
        yield {
            "seq": int(row.seq),
            "tenant_id": row.tenant_id,
            "actor_oid": row.actor_oid,
            "operation": row.operation,
            "targets": list(row.targets),
            "result": row.result,
            "at": _iso(row.at),
            "request_id": row.request_id,
            "graph_request_ids": list(row.graph_request_ids),
            "prev_hash": row.prev_hash,
            "row_hash": row.row_hash,
        }
