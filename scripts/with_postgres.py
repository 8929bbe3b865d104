"""Run a command against a throwaway PostgreSQL server started from the installed binaries.

    python scripts/with_postgres.py -- pytest ...

initdb makes a cluster in a temporary directory, the server listens on a free loopback port
(and a private socket directory), DATABASE_URL is set for the command, and the cluster is
stopped and deleted afterwards, whatever the command's result. PostgreSQL refuses to run as
root, so as root the server runs as the 'postgres' system user.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile


def find_bindir() -> str:
    for candidate in [
        os.environ.get("KETAFLOW_PG_BINDIR", ""),
        *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
    ]:
        if candidate and os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    sys.exit(
        "with_postgres: PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
        "run 'apt-get install postgresql' (make test does this when run as root)."
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.exit("usage: with_postgres.py -- COMMAND [ARGS]")
    bindir = find_bindir()
    as_root = os.geteuid() == 0
    run_as = []
    workdir = tempfile.mkdtemp(prefix="ketaflow-pg-")
    if as_root:
        pg = pwd.getpwnam("postgres")
        os.chown(workdir, pg.pw_uid, pg.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, sockdir, log = (os.path.join(workdir, name) for name in ("data", "sock", "server.log"))
    port = free_port()

    def pg(*args: str) -> None:
        subprocess.run([*run_as, *args], check=True, stdout=subprocess.DEVNULL)

    try:
        pg("mkdir", "-p", sockdir)
        pg(
            f"{bindir}/initdb",
            "-D",
            data,
            "-U",
            "ketaflow",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        options = f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        pg(f"{bindir}/pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start")
        env = dict(os.environ, DATABASE_URL=f"postgresql://ketaflow@127.0.0.1:{port}/postgres")
        print(
            f"with_postgres: throwaway PostgreSQL ({os.path.basename(os.path.dirname(bindir))}) on 127.0.0.1:{port}",
            flush=True,
        )
        return subprocess.call(argv, env=env)
    finally:
        subprocess.run(
            [*run_as, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
