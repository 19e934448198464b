"""A real Secret Service for the credential tests: gnome-keyring-daemon on a private
D-Bus session bus, its login keyring created and unlocked with a password on stdin.

The bus is started from a minimal config with no service directories, so nothing is
D-Bus-activated behind our back: the only Secret Service on it is the daemon started
here, and stopping the two processes leaves nothing running. Needs Debian's
`gnome-keyring` and `dbus-daemon` (scripts/bootstrap.sh installs them for `test`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import stop_process

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
PASSWORD = b"watchfloor-test-login"


@dataclass
class SecretService:
    env: dict[str, str]  # what a client needs: DBUS_SESSION_BUS_ADDRESS and the XDG dirs
    processes: list[subprocess.Popen[bytes]]
    log: Path

    def stop(self) -> None:
        for proc in reversed(self.processes):
            stop_process(proc)


def _has_owner(name: str) -> bool:
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    with closing(open_dbus_connection(bus="SESSION")) as conn:
        reply = conn.send_and_get_reply(message_bus.NameHasOwner(name), timeout=2)
        return bool(reply.body[0])


def start_secret_service(root: Path, timeout: float = 20.0) -> SecretService:
    missing = [b for b in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(b) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found: install Debian's gnome-keyring "
                           "and dbus-daemon (bash scripts/bootstrap.sh test does)")
    dirs = {name: root / name for name in ("home", "data", "config", "run")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    dirs["run"].chmod(0o700)
    config = root / "bus.conf"
    socket = root / "bus"
    config.write_text(BUS_CONFIG.format(socket=socket))
    env = {"HOME": str(dirs["home"]), "XDG_DATA_HOME": str(dirs["data"]),
           "XDG_CONFIG_HOME": str(dirs["config"]), "XDG_RUNTIME_DIR": str(dirs["run"]),
           "DBUS_SESSION_BUS_ADDRESS": f"unix:path={socket}"}
    child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **env}
    log = root / "daemons.log"
    processes: list[subprocess.Popen[bytes]] = []
    service = SecretService(env, processes, log)
    with log.open("wb") as out:
        processes.append(subprocess.Popen(
            ["dbus-daemon", "--nofork", "--nopidfile", f"--config-file={config}"],
            stdout=out, stderr=subprocess.STDOUT, env=child_env))
        deadline = time.monotonic() + timeout
        while not socket.exists():
            if time.monotonic() > deadline or processes[0].poll() is not None:
                service.stop()
                raise RuntimeError(f"dbus-daemon did not start; see {log}")
            time.sleep(0.05)
        daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=child_env)
        processes.append(daemon)
        assert daemon.stdin is not None
        daemon.stdin.write(PASSWORD)
        daemon.stdin.close()
    saved = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = env["DBUS_SESSION_BUS_ADDRESS"]
    try:
        while not _has_owner("org.freedesktop.secrets"):
            if time.monotonic() > deadline or daemon.poll() is not None:
                service.stop()
                raise RuntimeError(f"gnome-keyring-daemon did not start; see {log}")
            time.sleep(0.05)
    finally:
        if saved is None:
            del os.environ["DBUS_SESSION_BUS_ADDRESS"]
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = saved
    return service
