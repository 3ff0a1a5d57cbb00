"""The court window's own process: OpenCV's GUI (Qt) must run on a main thread.

The terminal composes each picture in a worker thread (terminal/screen.py) while asyncio owns its
main thread; Qt refuses to draw from any thread but the main one. So the window lives here:
`python -m terminal.viewer WIDTH HEIGHT [--windowed]` reads raw BGR pictures of that size from
standard input and shows them, until its input ends.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

WINDOW = "Tingshen 庭审"


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    width, height = int(args[0]), int(args[1])
    if not (16 <= width <= 7680 and 16 <= height <= 4320):
        print(f"viewer: unreasonable size {width}x{height}", file=sys.stderr)
        return 2
    size = width * height * 3
    cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    if "--windowed" not in args:
        cv2.setWindowProperty(WINDOW, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
    else:
        cv2.resizeWindow(WINDOW, width, height)
    source = sys.stdin.buffer
    while True:
        data = source.read(size)
        if len(data) < size:
            break  # the terminal closed the window (or ended)
        cv2.imshow(WINDOW, np.frombuffer(data, np.uint8).reshape(height, width, 3))
        cv2.waitKey(1)  # HighGUI draws in waitKey; no key does anything
    cv2.destroyAllWindows()
    return 0


if __name__ == "__main__":
    sys.exit(main())
