"""The software twin: the meter and the bench instruments, served on the OS interfaces a bench has.

Composition layer (`rig.twin`): models the World, runs on a virtual clock, and never imports the rig's
host-side protocol state machines (only codecs pinned by golden vectors) nor the test plans.
"""
