"""Runs a command in a detached tmux session (a tmux server of its own) and prints, as a JSON list, every distinct
line its screen showed until it ended: what a person watching the terminal saw, progress lines included.

Usage: terminal_progress.py SESSION COMMAND [ARGUMENT ...]
"""

import json
import shlex
import subprocess
import sys
import time

session, command = sys.argv[1], sys.argv[2:]
socket = f"quarry-test-{session}"
marker = "quarry-finished"
tmux = ["tmux", "-L", socket]
subprocess.run(tmux + ["kill-server"], stderr=subprocess.DEVNULL)
subprocess.run(tmux + ["new-session", "-d", "-s", session, "-x", "200", "-y", "20",
                       f"{shlex.join(command)} 2>&1; echo {marker}; sleep 30"], check=True)
seen = []
deadline = time.time() + 180
try:
    while time.time() < deadline:
        screen = subprocess.run(tmux + ["capture-pane", "-p", "-t", session], capture_output=True, text=True)
        if screen.returncode != 0:
            seen.append("capture-pane: " + screen.stderr.strip())
            break
        lines = [line.strip() for line in screen.stdout.splitlines() if line.strip()]
        seen += [line for line in lines if line not in seen]
        if marker in lines:
            break
        time.sleep(0.1)
finally:
    subprocess.run(tmux + ["kill-server"], stderr=subprocess.DEVNULL)
print(json.dumps(seen))
