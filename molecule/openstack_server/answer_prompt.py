"""Run a command on a terminal and type an answer at its prompt, as a user would.

    python answer_prompt.py PROMPT ANSWER COMMAND...

ansible-playbook --ask-vault-pass reads the password from the terminal with echo off (Python's
getpass flushes what was typed before the prompt), so the answer is written only once PROMPT has
been printed. Prints everything the command printed; exits with the command's status.
"""
import os
import pty
import sys

prompt, answer, argv = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
seen, answered = b"", False
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:  # the command closed the terminal: it ended
        break
    if not chunk:
        break
    sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
    if not answered:
        seen += chunk
        if prompt in seen:
            os.write(fd, answer + b"\n")
            answered = True
status = os.waitpid(pid, 0)[1]
sys.exit(os.waitstatus_to_exitcode(status))
