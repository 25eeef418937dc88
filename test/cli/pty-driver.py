"""Drives an interactive program through a pseudo-terminal, like an operator at a keyboard.

usage: python3 pty-driver.py STEPS_JSON -- COMMAND ARGS...
STEPS_JSON is a list of [expected_text, keys_to_type]: wait until expected_text appears in the output since the
previous step, then type the keys. Prints the whole transcript; exits 0 when every step matched and the program
ended, 3 on a timeout (the transcript so far is printed).
"""
import json
import os
import pty
import select
import sys
import time

TIMEOUT = float(os.environ.get("PTY_STEP_TIMEOUT", "30"))


def main() -> int:
    steps = json.loads(sys.argv[1])
    command = sys.argv[sys.argv.index("--") + 1 :]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    transcript = b""
    seen = 0

    def read(deadline: float) -> str:
        """Reads what is there: 'data', 'eof' (the program closed the terminal) or 'timeout'."""
        nonlocal transcript
        while time.time() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    return "eof"
                if not data:
                    return "eof"
                transcript += data
                return "data"
        return "timeout"

    for expected, keys in steps:
        deadline = time.time() + TIMEOUT
        target = expected.encode()
        while target not in transcript[seen:]:
            if read(deadline) != "data":
                sys.stdout.write(transcript.decode(errors="replace"))
                sys.stdout.write(f"\n[pty-driver] timed out waiting for {expected!r}\n")
                os.kill(pid, 9)
                return 3
        seen = transcript.index(target, seen) + len(target)
        os.write(fd, keys.encode())
    deadline = time.time() + TIMEOUT
    while read(deadline) == "data":
        pass
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(transcript.decode(errors="replace"))
    code = os.waitstatus_to_exitcode(status)
    sys.stdout.write(f"\n[pty-driver] exit {code}\n")
    return 0 if code == 0 else 4


if __name__ == "__main__":
    sys.exit(main())
