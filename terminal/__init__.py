"""The remote defendant's terminal: a Python hearing client with camera, screen and reconnect."""
