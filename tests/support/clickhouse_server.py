"""A throwaway ClickHouse server process for integration tests.

Debian's ``clickhouse-server`` (18.16; install it with ``scripts/install-clickhouse-server.sh``) run with
our own ``config.xml``/``users.xml`` written into a work directory: it listens on 127.0.0.1 only, on a
free native TCP port and a free HTTP port (no interserver, TLS, MySQL or other listeners), and keeps its
data, tmp files and logs under that directory. The system service is never used.

    with ClickHouseServer(tmp_path) as server:
        warehouse = connect(server.url("rapport"))
        ...
        server.kill()    # SIGKILL, as a crash would
        server.start()   # same ports, same data directory

The server runs as the calling user (root here: 18.16 does not insist on a ``clickhouse`` user when
started by hand). :func:`clickhouse_server_available` says why the tests should be skipped, if they should.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from xml.sax.saxutils import escape

from streams.local.broker import free_port

BINARY_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("/usr/sbin/clickhouse-server",),  # Debian's package puts it here
    ("/usr/bin/clickhouse-server",),
    ("/usr/bin/clickhouse", "server"),  # the single multi-call binary of upstream packages
)
INSTALL_HINT = "run scripts/install-clickhouse-server.sh (as root)"

CONFIG_TEMPLATE = """<?xml version="1.0"?>
<!-- written by tests/support/clickhouse_server.py -->
<yandex>
    <logger>
        <level>{log_level}</level>
        <log>{log_dir}/clickhouse-server.log</log>
        <errorlog>{log_dir}/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
        <console>false</console>
    </logger>
    <listen_host>{host}</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>64</max_concurrent_queries>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mark_cache_size>67108864</mark_cache_size>
    <path>{data_dir}/</path>
    <tmp_path>{tmp_dir}/</tmp_path>
    <user_files_path>{data_dir}/user_files/</user_files_path>
    <format_schema_path>{data_dir}/format_schemas/</format_schema_path>
    <users_config>{users_config}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
{timezone_element}    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
"""

USERS_TEMPLATE = """<?xml version="1.0"?>
<!-- written by tests/support/clickhouse_server.py -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"""


class ClickHouseServerError(RuntimeError):
    """The server could not be started (the message ends with the tail of its logs)."""


def find_server_command() -> list[str] | None:
    """The argv prefix that runs ``clickhouse-server``, or None when no binary is installed."""
    for candidate in BINARY_CANDIDATES:
        if os.access(candidate[0], os.X_OK):
            return list(candidate)
    found = shutil.which("clickhouse-server")
    return [found] if found else None


def clickhouse_server_available() -> str | None:
    """None when a server can be started here, else the reason (for ``pytest.skip``)."""
    if find_server_command() is None:
        return f"no clickhouse-server binary ({', '.join(c[0] for c in BINARY_CANDIDATES)}); {INSTALL_HINT}"
    try:
        import clickhouse_driver  # noqa: F401
    except ImportError:
        return "clickhouse-driver is not installed"
    return None


class ClickHouseServer:
    """A ``clickhouse-server`` process with its own config, ports and data under ``workdir``.

    Ports are chosen once, at construction, so :meth:`start` after :meth:`kill`/:meth:`stop` brings the
    server back at the same address on the same data.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        timezone: str | None = None,
        startup_timeout: float = 30.0,
        log_level: str = "information",
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.host = host
        self.port = free_port(host)
        self.http_port = free_port(host)
        while self.http_port == self.port:
            self.http_port = free_port(host)
        self.timezone = timezone
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.data_dir = self.workdir / "data"
        self.tmp_dir = self.workdir / "tmp"
        self.log_dir = self.workdir / "log"
        self.config_path = self.workdir / "config.xml"
        self.users_path = self.workdir / "users.xml"
        self.stdout_path = self.log_dir / "stdout-stderr.log"
        self._process: subprocess.Popen[bytes] | None = None

    # -- addresses ----------------------------------------------------------------------------------

    def url(self, database: str = "default") -> str:
        """The warehouse URL for ``streams.sinks.warehouse.connect`` (native port, and the HTTP port that
        ``query_text`` asks the server's own output formats from)."""
        return f"clickhouse://{self.host}:{self.port}/{database}?http_port={self.http_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ----------------------------------------------------------------------------------

    def write_config(self) -> None:
        for directory in (self.data_dir, self.tmp_dir, self.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        timezone_element = f"    <timezone>{escape(self.timezone)}</timezone>\n" if self.timezone else ""
        self.config_path.write_text(
            CONFIG_TEMPLATE.format(
                log_level=escape(self.log_level),
                log_dir=escape(str(self.log_dir)),
                host=escape(self.host),
                tcp_port=self.port,
                http_port=self.http_port,
                data_dir=escape(str(self.data_dir)),
                tmp_dir=escape(str(self.tmp_dir)),
                users_config=escape(str(self.users_path)),
                timezone_element=timezone_element,
            )
        )
        self.users_path.write_text(USERS_TEMPLATE)

    def start(self) -> ClickHouseServer:
        """Start the server (again, on the same data directory) and wait until it answers ``SELECT 1``."""
        if self.is_running():
            return self
        command = find_server_command()
        if command is None:
            raise ClickHouseServerError(f"no clickhouse-server binary; {INSTALL_HINT}")
        self.write_config()
        with self.stdout_path.open("ab") as output:
            self._process = subprocess.Popen(
                [*command, f"--config-file={self.config_path}"],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, not to the server
            )
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self) -> None:
        from clickhouse_driver import Client

        deadline = time.monotonic() + self.startup_timeout
        last_error = "no attempt yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ClickHouseServerError(
                    f"clickhouse-server exited with status {self._process.returncode} while starting "
                    f"({self.host}:{self.port}):\n{self.log_tail()}"
                )
            try:  # a plain TCP probe first: the driver logs a traceback for every refused connection
                socket.create_connection((self.host, self.port), timeout=1).close()
            except OSError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.1)
                continue
            client = Client(
                host=self.host,
                port=self.port,
                connect_timeout=1,
                send_receive_timeout=5,
                sync_request_timeout=5,
            )
            try:
                if client.execute("SELECT 1") == [(1,)]:
                    return
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            finally:
                client.disconnect()
            time.sleep(0.1)
        raise ClickHouseServerError(
            f"clickhouse-server on {self.host}:{self.port} did not answer SELECT 1 within "
            f"{self.startup_timeout:.0f} s (last error: {last_error}):\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL the server, as a crash or an OOM kill would, and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """Shut the server down cleanly (SIGTERM), falling back to SIGKILL after ``timeout`` seconds."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout)
        self.kill()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's logs (for error messages)."""
        parts = []
        for path in (self.stdout_path, self.log_dir / "clickhouse-server.err.log"):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                if text:
                    parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts) or "(no log output)"

    # -- context manager ----------------------------------------------------------------------------

    def __enter__(self) -> ClickHouseServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
