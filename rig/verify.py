"""The old import path of `rig verify` and run sealing: they live in rig.integrity (seal: what a session signs;
verify, checks, report: `rig verify` as a table of checks). Kept so that `from rig.verify import ...` works.
"""

from rig.integrity.checks import CHECKS, Check
from rig.integrity.report import UNPINNED_TEXT, Finding, Pins, Verification
from rig.integrity.seal import (
    JOURNAL_FILES,
    build_addendum,
    build_manifest,
    file_digest,
    folder_files,
    hash_attachments,
    hold_for_seal,
    seal_folder,
    seal_session,
    sign_session,
)
from rig.integrity.verify import verify_run

__all__ = [
    "CHECKS", "JOURNAL_FILES", "UNPINNED_TEXT", "Check", "Finding", "Pins", "Verification", "build_addendum",
    "build_manifest", "file_digest", "folder_files", "hash_attachments", "hold_for_seal", "seal_folder",
    "seal_session", "sign_session", "verify_run",
]
