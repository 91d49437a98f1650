"""The twin's ESAM master key and how the rig is told where it is, by reference only.

A bench file that names `keys.esam_master` (a key file or environment variable) provisions every twin
ESAM with that key. Otherwise the embedded twin derives a throwaway key from its seed at run time and,
while it runs, keeps it in a temporary file only this user can read, which `Twin.resolve` names as the
bench's `keys.esam_master`: the rig reads it exactly as it reads a lab's key file. Emulation only (not
State Grid-compatible). The key never appears in a message, a repr or the resolved bench file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from rig.config import ESAM_MASTER_KEY, BenchConfig, ConfigError, KeyRef
from rig.twin.esam import twin_master_key

KEY_FILE_NAME = "esam_master.key"


class TwinEsamKey:
    """The master key of the twin's ESAMs: the bench's (by reference) or one derived from the seed."""

    def __init__(self, bench: BenchConfig, seed: int) -> None:
        ref = bench.keys.get(ESAM_MASTER_KEY)
        if ref is not None:
            key = ref.read()
            if len(key) != 16:
                where = f"key file {ref.file}" if ref.file is not None else f"environment variable {ref.env}"
                raise ConfigError(f"keys.{ESAM_MASTER_KEY} ({where}) must hold 32 hex digits (an SM4 key), "
                                  f"it holds {len(key)} bytes")
            self.derived = False
        else:
            key = twin_master_key(seed)
            self.derived = True
        self._key = key
        self._folder: Path | None = None
        self._variable: str | None = None

    def __repr__(self) -> str:
        return f"TwinEsamKey({'derived from the seed' if self.derived else 'from the bench file'})"

    @property
    def key(self) -> bytes:
        """The 16-byte master key (for the twin's ESAMs only)."""
        return self._key

    def publish(self, *, to_file: bool = False) -> None:
        """Hand a derived key over: in an environment variable of this process, or (`to_file`, for a
        twin served to other processes) in a temporary file only this user can read. No-op for a bench key."""
        if not self.derived or self._folder is not None or self._variable is not None:
            return
        if not to_file:
            self._variable = f"RIG_TWIN_ESAM_KEY_{secrets.token_hex(4).upper()}"
            os.environ[self._variable] = self._key.hex()
            return
        folder = Path(tempfile.mkdtemp(prefix="rig-twin-keys-"))  # mode 0700
        path = folder / KEY_FILE_NAME
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self._key.hex() + "\n")
        self._folder = folder

    def reference(self) -> KeyRef | None:
        """Where the rig reads the derived key while the twin runs (None: the bench file names its own)."""
        if self._variable is not None:
            return KeyRef(env=self._variable)
        if self._folder is not None:
            return KeyRef(file=self._folder / KEY_FILE_NAME)
        return None

    def withdraw(self) -> None:
        """Remove the environment variable or delete the temporary key file."""
        variable, self._variable = self._variable, None
        if variable is not None:
            os.environ.pop(variable, None)
        folder, self._folder = self._folder, None
        if folder is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)
