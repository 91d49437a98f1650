"""The lab's bench registry through labgrid: a run holds its bench's place (rig.lab.places, by way of the
lease process rig.lab.lease), and a served twin exports its instruments and meter ports (rig.lab.exporter)."""
