"""The twin meter's DL/T 698.45 side: its own codec, the protocol demultiplexer, the server and its knobs."""
