"""Start-up configuration read from the environment.

Everything here runs before Django is set up, so a misconfigured machine stops
with one clear line (``ConfigError``) instead of a traceback.
"""

import os
import secrets
import stat
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A configuration problem a person must fix; the message says what to do."""


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ConfigError(f"{name}={value!r} is not a whole number of at least {minimum}.")
    return number


def private_file(path: Path) -> None:
    """Create ``path`` readable by this user only (0600), or take group and world access away."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                path.chmod(mode & 0o700)
        except OSError:
            pass  # not ours to change (another user's file): left as the operator set it
    else:
        os.close(fd)


def var_dir() -> Path:
    """The writable data directory (default ``var/`` beside the project), created 0700."""
    path = Path(os.environ.get("KETAFLOW_VAR_DIR", BASE_DIR / "var")).resolve()
    try:
        if not path.exists():
            path.mkdir(parents=True, mode=0o700)
            path.chmod(0o700)  # mkdir's mode is filtered by the umask
        elif path.is_dir() and path.stat().st_uid == os.getuid():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                path.chmod(mode & 0o700)  # the secret key and the database live here
    except OSError as exc:
        raise ConfigError(
            f"The data directory {path} cannot be created ({exc.strerror}): "
            "create it or set KETAFLOW_VAR_DIR to a writable directory."
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(
            f"The data directory {path} is not writable: fix its permissions "
            "or set KETAFLOW_VAR_DIR to a writable directory."
        )
    return path


def secret_key(var: Path) -> str:
    """KETAFLOW_SECRET_KEY, or a key generated once into var/secret_key (mode 600)."""
    key = os.environ.get("KETAFLOW_SECRET_KEY", "").strip()
    if key:
        if len(key) < 50:
            raise ConfigError(
                "KETAFLOW_SECRET_KEY is shorter than 50 characters: use a longer random key."
            )
        return key
    path = var / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if len(key) < 50:
            raise ConfigError(
                f"{path} holds a key shorter than 50 characters: delete it to generate a new one."
            )
        return key
    key = secrets.token_urlsafe(64)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def database(var: Path) -> dict:
    """DATABASE_URL (postgres://... or sqlite:///...), defaulting to SQLite under var/."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        url = f"sqlite:///{var / 'ketaflow.sqlite3'}"
    scheme = urlsplit(url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ConfigError(
            f"DATABASE_URL has the scheme {scheme or '(none)'!r}: use postgresql://USER:PASSWORD@HOST:PORT/NAME "
            "or sqlite:///ABSOLUTE/PATH."
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=0 if scheme == "sqlite" else 60)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"DATABASE_URL cannot be read ({exc}): check its form.") from exc
    if config["ENGINE"].endswith("sqlite3"):
        if not config.get("NAME"):
            raise ConfigError("DATABASE_URL for SQLite needs a file path: sqlite:///ABSOLUTE/PATH.")
        if config["NAME"] != ":memory:":
            # Patient records: the file is made 0600 before SQLite opens it, and SQLite gives
            # its -wal and -shm files the database file's permissions.
            database_file = Path(config["NAME"])
            if database_file.parent.is_dir():
                for suffix in ("", "-wal", "-shm"):
                    candidate = Path(f"{database_file}{suffix}")
                    if suffix == "" or candidate.exists():
                        private_file(candidate)
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; "
                "PRAGMA busy_timeout=20000;"
            ),
        }
    else:
        if not config.get("NAME"):
            raise ConfigError(
                "DATABASE_URL for PostgreSQL needs a database name after the host: .../NAME."
            )
        config["ATOMIC_REQUESTS"] = False
    config["TEST"] = {"NAME": None}
    return config
