"""Use labkit from a shell.

python -m labkit lab [--fresh NN]   copy the lessons to my-work/ (once), open JupyterLab there
python -m labkit lab --lang zh      the same with the Chinese lessons (my-work/zh/)
python -m labkit doctor             check this machine
python -m labkit serve NAME [...]   run a teaching server in the foreground (Ctrl-C stops it)
python -m labkit servers            list the teaching servers
"""

import os
import sys

from labkit.servers import NAMES


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command == "doctor":
        from labkit.doctor import doctor

        report = doctor()
        print(report)
        return 0 if report.ok else 1
    if command == "lab":
        from labkit.workspace import lab

        return lab(argv[1:])
    if command == "servers":
        print("\n".join(NAMES))
        return 0
    if command == "serve" and len(argv) >= 2 and argv[1] in NAMES:
        module = f"labkit.servers.{argv[1]}"
        os.execv(sys.executable, [sys.executable, "-m", module, *argv[2:]])
    print(__doc__.strip())
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
