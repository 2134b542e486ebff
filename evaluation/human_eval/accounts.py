"""Rater accounts: roles, hashed passwords (scrypt) and hashed bearer tokens (SHA-256).

A token is 32 random bytes (urlsafe base64); only its SHA-256 is stored, so a leaked database does
not leak credentials. Passwords are hashed with scrypt and a per-password salt. A failed login costs
one scrypt whether or not the name exists (unknown names are checked against a dummy hash), so its
timing does not tell which accounts exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from evaluation.human_eval.schema import ROLES, Rater, RaterToken
from evaluation.human_eval.store import DbLike, open_store

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# Checked for names without a usable password: the same scrypt work as a real check, against an
# all-zero digest that no password yields in practice.
_DUMMY_HASH = "$".join(
    [
        "scrypt",
        *(str(_SCRYPT[k]) for k in "nrp"),
        base64.b64encode(bytes(16)).decode(),
        base64.b64encode(bytes(32)).decode(),
    ]
)
SESSION_HOURS = 12


class AuthError(PermissionError):
    """A credential is missing, unknown, expired, or belongs to an inactive rater."""


class AccountError(ValueError):
    """An account cannot be created as asked (duplicate name, unknown role, empty password)."""


@dataclass(frozen=True)
class RaterIdentity:
    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` with base64 salt and hash."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    encode = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), dklen=32, n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_rater(
    db: DbLike, name: str, role: str = "rater", password: str | None = None
) -> tuple[RaterIdentity, str]:
    """Create an account; returns its identity and a new API token (shown once, stored hashed)."""
    if role not in ROLES:
        raise AccountError(f"rater {name!r}: role {role!r} is not one of {ROLES}")
    if not name.strip():
        raise AccountError("rater name must not be empty")
    if password is not None and len(password) < 4:
        raise AccountError(f"rater {name!r}: password must have at least 4 characters")
    store = open_store(db)
    with store.session(write=True) as session:
        if session.scalar(select(Rater).where(Rater.name == name)) is not None:
            raise AccountError(f"a rater named {name!r} already exists")
        rater = Rater(name=name, role=role, password_hash=hash_password(password) if password else None)
        session.add(rater)
        session.flush()
        token = _issue_token(session, rater.id, "api", expires_at=None)
        return RaterIdentity(rater.id, rater.name, rater.role), token


def set_password(db: DbLike, name: str, password: str) -> RaterIdentity:
    """Give the existing account `name` a new password (its sessions stay valid until they expire).

    Raises `AccountError` for an unknown name or a password under 4 characters."""
    if len(password) < 4:
        raise AccountError(f"rater {name!r}: password must have at least 4 characters")
    with open_store(db).session(write=True) as session:
        rater = session.scalar(select(Rater).where(Rater.name == name))
        if rater is None:
            raise AccountError(f"no rater named {name!r}")
        rater.password_hash = hash_password(password)
        return RaterIdentity(rater.id, rater.name, rater.role)


def new_password() -> str:
    """A random password to print once: 12 URL-safe characters (72 bits)."""
    return secrets.token_urlsafe(9)


def rater_exists(db: DbLike, name: str) -> bool:
    with open_store(db).session() as session:
        return session.scalar(select(Rater.id).where(Rater.name == name)) is not None


def issue_api_token(db: DbLike, rater_id: int) -> str:
    """A further API token for an existing rater (e.g. after the first was lost)."""
    with open_store(db).session(write=True) as session:
        return _issue_token(session, rater_id, "api", expires_at=None)


def login(db: DbLike, name: str, password: str) -> tuple[RaterIdentity, str]:
    """Check a password; returns the identity and a session token valid for `SESSION_HOURS`.

    Every failure raises the same `AuthError` after the same work: one scrypt of `password`.
    """
    store = open_store(db)
    identity, stored = None, _DUMMY_HASH
    with store.session() as session:
        rater = session.scalar(select(Rater).where(Rater.name == name))
        if rater is not None and rater.active and rater.password_hash is not None:
            identity, stored = RaterIdentity(rater.id, rater.name, rater.role), rater.password_hash
    # Hash outside the transaction, so a SQLite write lock is not held for the ~50 ms of scrypt.
    matches = verify_password(password, stored)
    if identity is None or not matches:
        raise AuthError("unknown rater or wrong password")
    with store.session(write=True) as session:
        expires = datetime.now(UTC) + timedelta(hours=SESSION_HOURS)
        return identity, _issue_token(session, identity.id, "session", expires_at=expires)


def authenticate(db: DbLike, token: str | None) -> RaterIdentity:
    """The rater a bearer token belongs to; raises `AuthError` for anything else."""
    if not token:
        raise AuthError("missing token")
    with open_store(db).session() as session:
        row = session.scalar(select(RaterToken).where(RaterToken.token_hash == hash_token(token)))
        if row is None:
            raise AuthError("invalid token")
        if row.expires_at is not None and _aware(row.expires_at) < datetime.now(UTC):
            raise AuthError("session expired: log in again")
        rater = row.rater
        if not rater.active:
            raise AuthError(f"rater {rater.name!r} is deactivated")
        return RaterIdentity(rater.id, rater.name, rater.role)


def revoke_token(db: DbLike, token: str) -> None:
    """Forget a token (logout). Tokens are credentials, not history, so deleting them is fine."""
    with open_store(db).session(write=True) as session:
        row = session.scalar(select(RaterToken).where(RaterToken.token_hash == hash_token(token)))
        if row is not None:
            session.delete(row)


def rater_ids(db: DbLike) -> list[int]:
    """Ids of every account with the rater role, in creation order."""
    with open_store(db).session() as session:
        return list(session.scalars(select(Rater.id).where(Rater.role == "rater").order_by(Rater.id)))


def _issue_token(session: Session, rater_id: int, kind: str, expires_at: datetime | None) -> str:
    token = secrets.token_urlsafe(32)
    session.add(RaterToken(rater_id=rater_id, token_hash=hash_token(token), kind=kind, expires_at=expires_at))
    return token


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes even for timezone-aware columns; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
