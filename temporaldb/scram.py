"""SCRAM-SHA-256 password verifiers, computed on the client (RFC 5802, RFC 7677).

PostgreSQL stores a password given to CREATE/ALTER ROLE ... PASSWORD as is when
the string already is a SCRAM-SHA-256 verifier. Giving it the verifier instead
of the password means the statement text, which `log_statement = ddl` writes to
the server log (and RDS exports to CloudWatch Logs) and pg_stat_statements
keeps, never holds a password. This is what libpq's PQencryptPasswordConn and
psql's \\password do.

The salt is an input, not drawn here: a verifier that must stay the same from
one `pulumi up` to the next (or the provider sees a change every run) needs a
salt that is kept, e.g. in state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

# PostgreSQL's default (scram_iterations, PostgreSQL 16+; fixed before).
DEFAULT_ITERATIONS = 4096
# What libpq and the server draw (SCRAM_DEFAULT_SALT_LEN); shorter salts are refused here.
SALT_BYTES = 16
KEY_BYTES = hashlib.sha256().digest_size
# ASCII digits only (`\d` also matches other scripts' digits); fullmatch, so no trailing newline slips through.
VERIFIER_PATTERN = re.compile(r"SCRAM-SHA-256\$([0-9]+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")


def _normalized(password: str) -> bytes:
    """The bytes PostgreSQL's SASLprep yields for `password`: printable ASCII passes unchanged.

    SASLprep leaves an ASCII string as it is; for others, PostgreSQL falls back
    to the raw bytes when SASLprep fails, so a non-ASCII password is refused here
    rather than guessing which way the server goes. Control characters are
    refused too (a stray newline from a password file must not become part of it).
    """
    if not password.isascii():
        raise ValueError("only ASCII passwords are supported for client-side SCRAM verifiers")
    if _PRINTABLE_ASCII.fullmatch(password) is None:
        raise ValueError("the password holds a control character")
    return password.encode("ascii")


def verifier(password: str, salt: bytes, iterations: int = DEFAULT_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL would store for `password` with this salt."""
    if not password:
        raise ValueError("an empty password has no verifier")
    if len(salt) < SALT_BYTES:
        raise ValueError(f"the salt must be at least {SALT_BYTES} bytes, got {len(salt)}")
    if iterations < 1:
        raise ValueError("iterations must be positive")
    return _compute(_normalized(password), salt, iterations)


def _compute(password: bytes, salt: bytes, iterations: int) -> str:
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def verifier_from_b64_salt(password: str, salt_b64: str, iterations: int = DEFAULT_ITERATIONS) -> str:
    """`verifier` with the salt as standard base64 (how pulumi_random.RandomBytes gives it)."""
    try:
        salt = base64.b64decode(salt_b64, validate=True)
    except binascii.Error as error:
        raise ValueError(f"the salt is not standard base64: {error}") from None
    return verifier(password, salt, iterations)


def _parts(verifier_text: str) -> tuple[int, bytes, bytes, bytes] | None:
    """(iterations, salt, stored key, server key), or None when the text is no verifier PostgreSQL would take."""
    match = VERIFIER_PATTERN.fullmatch(verifier_text)
    if match is None:
        return None
    try:
        salt, stored_key, server_key = (base64.b64decode(part, validate=True) for part in match.group(2, 3, 4))
    except binascii.Error:
        return None
    iterations = int(match.group(1))
    if iterations < 1 or not salt or len(stored_key) != KEY_BYTES or len(server_key) != KEY_BYTES:
        return None
    return iterations, salt, stored_key, server_key


def is_verifier(text: str) -> bool:
    """Whether PostgreSQL would store `text` as a SCRAM-SHA-256 verifier (as is) rather than hash it."""
    return _parts(text) is not None


def salt_of(verifier_text: str) -> bytes:
    """The salt inside a verifier (to recompute it, e.g. against one PostgreSQL made)."""
    parts = _parts(verifier_text)
    if parts is None:
        raise ValueError("not a SCRAM-SHA-256 verifier")
    return parts[1]


def matches(password: str, verifier_text: str) -> bool:
    """Whether `verifier_text` is the verifier of `password` (with its own salt and iteration count)."""
    parts = _parts(verifier_text)
    if parts is None:
        return False
    iterations, salt, _, _ = parts
    try:
        normalized = _normalized(password)
    except ValueError:
        return False
    # Any salt PostgreSQL took counts here, also one shorter than `verifier` would make.
    return hmac.compare_digest(_compute(normalized, salt, iterations), verifier_text)
