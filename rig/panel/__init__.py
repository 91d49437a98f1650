"""The live operator panel: a small web page on loopback showing each position's lamp and current step, bench
time and the wall-time estimate, the last records with their verdicts, and the operator's questions answered
with buttons (the terminal asks the same questions; the first answer wins).

`rig run --panel` serves the run's own panel (rig.panel.state fed by the run, fixtures.panel); `rig panel`
follows a run's journal (rig.panel.follow) from another process or a lab database.
"""

from rig.panel.operator import PanelOperator
from rig.panel.server import PanelError, PanelServer
from rig.panel.state import PanelState

PANEL_FILE = "panel.json"  # in the run folder while `rig run --panel` serves: where `rig panel` points the operator

__all__ = ["PANEL_FILE", "PanelError", "PanelOperator", "PanelServer", "PanelState"]
